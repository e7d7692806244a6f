"""Log every demo user in over HTTP and check that their role's home page answers."""

import http.cookiejar
import os
import re
import sys
import urllib.parse
import urllib.request

import django

sys.path.insert(0, ".")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rlhf_platform.settings")
os.environ.setdefault("DEBUG", "1")
django.setup()
from rlhf_platform.demo import DEMO_USERS


def login(base: str, username: str, password: str) -> tuple[str, urllib.request.OpenerDirector]:
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
    return opener.open(request).read().decode(), opener


def main(base: str) -> None:
    for demo in DEMO_USERS:
        html, opener = login(base, demo.username, demo.password)
        for role in demo.roles:
            if f'data-role="{role}"' not in html:
                raise SystemExit(f"{demo.username}: home page does not show role {role}")
        print(f"  {demo.username}: logged in, sees {', '.join(demo.roles)}")
        if demo.username == "annotator":
            projects = opener.open(f"{base}/annotation/").read().decode()
            match = re.search(r'href="(/annotation/projects/\d+/(?:queue|label)/)"', projects)
            if "Polite or rude? (demo)" not in projects or match is None:
                raise SystemExit("annotator: the demo project is not offered for labelling")
            label_url = match.group(1).replace("/queue/", "/label/")
            label_page = opener.open(base + label_url).read().decode()
            if "data-item-id" not in label_page:
                raise SystemExit("annotator: no item to label in the demo project")
            print("  annotator: the demo project offers an item to label")


if __name__ == "__main__":
    main(sys.argv[1])
