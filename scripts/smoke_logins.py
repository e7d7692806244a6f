"""Log every demo user in over HTTP and check that their role's home page answers."""

import http.cookiejar
import re
import sys
import urllib.parse
import urllib.request

sys.path.insert(0, ".")
from rlhf_platform.demo import DEMO_USERS


def login(base: str, username: str, password: str) -> str:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/accounts/login/").read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    data = urllib.parse.urlencode(
        {"username": username, "password": password, "csrfmiddlewaretoken": token}
    ).encode()
    request = urllib.request.Request(
        f"{base}/accounts/login/", data=data, headers={"Referer": base}
    )
    return opener.open(request).read().decode()


def main(base: str) -> None:
    for demo in DEMO_USERS:
        html = login(base, demo.username, demo.password)
        for role in demo.roles:
            if f'data-role="{role}"' not in html:
                raise SystemExit(f"{demo.username}: home page does not show role {role}")
        print(f"  {demo.username}: logged in, sees {', '.join(demo.roles)}")


if __name__ == "__main__":
    main(sys.argv[1])
