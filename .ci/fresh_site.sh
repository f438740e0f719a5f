#!/usr/bin/env bash
# A new user's first hour, by hand (not part of .ci/run: it downloads and installs a
# whole site, a few minutes per combination):
#
#   .ci/fresh_site.sh                              # newest Wagtail/Django, Python 3.12
#   FRESH_PYTHON=3.11.7 FRESH_REQUIREMENTS="wagtail>=7.4,<7.5 django>=5.2,<5.3" \
#     .ci/fresh_site.sh                            # Wagtail 7.4 LTS + Django 5.2 LTS
#
# In a temporary folder: a fresh venv, `pip install wagtail`, `wagtail start mysite`,
# the plugin's built wheel, README's settings and URL lines (read from README.md itself,
# so the walk checks what README says), `migrate`, `check --fail-level WARNING`,
# `paidwebinar_grant Editors`; then a webinar with a personal link is invited through a
# real `rqworker` (Redis, --with-scheduler) and an aiosmtpd SMTP sink, and the e-mail
# must carry the personal link. Last, each required README line is left out in turn
# and `check` must name it.
#
# Needs Redis (FRESH_REDIS_URL, default redis://127.0.0.1:6379/7: the queue
# "mysite_webinars" there is emptied) and pyenv's interpreters or python3.X on PATH.
# FRESH_KEEP=1 keeps the folder.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY_VERSION=${FRESH_PYTHON:-3.12.1}
REQUIREMENTS=${FRESH_REQUIREMENTS:-wagtail}
REDIS_URL=${FRESH_REDIS_URL:-redis://127.0.0.1:6379/7}
SECONDS=0
W=$(mktemp -d /tmp/fresh-site.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ -z "${FRESH_KEEP:-}" ]; then rm -rf "$W"; else echo "kept $W"; fi
}
trap cleanup EXIT
step() { echo "== $* ($((SECONDS / 60)) min $((SECONDS % 60)) s)"; }

if prefix=$(pyenv prefix "$PY_VERSION" 2>/dev/null); then
  PYTHON="$prefix/bin/python"
else
  PYTHON=$(command -v "python${PY_VERSION%.*}")
fi

step "venv ($PYTHON) and pip install $REQUIREMENTS"
"$PYTHON" -m venv "$W/venv"
PY="$W/venv/bin/python"
# shellcheck disable=SC2086  # REQUIREMENTS is a list of requirement specifiers
"$PY" -m pip install -q --upgrade pip $REQUIREMENTS
"$PY" -c 'import django, wagtail, sys
print("Python", sys.version.split()[0], "Django", django.__version__,
      "Wagtail", wagtail.__version__)'

step "wagtail start mysite"
(cd "$W" && "$W/venv/bin/wagtail" start mysite >/dev/null)
SITE="$W/mysite"

step "the plugin's wheel (pip wheel, as README says) and pip install"
"$PY" -m pip wheel -q --no-deps -w "$W/dist" "$REPO"
"$PY" -m pip install -q "$W"/dist/wagtail_paidwebinar-*.whl aiosmtpd
# What the wheel must not do: change the Django or Wagtail that pip chose.
"$PY" -m pip check

SMTP_PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')

step "README's lines into settings/base.py and urls.py"
"$PY" - "$REPO/README.md" "$SITE" "$REDIS_URL" "$SMTP_PORT" <<'EOF'
import re
import sys
from pathlib import Path

import django

readme, site, redis_url, smtp_port = sys.argv[1:]
site = Path(site)
blocks = re.findall(r"```python\n(.*?)```", Path(readme).read_text(), re.S)


def block(first_line):
    found = [b for b in blocks if b.startswith(first_line + "\n")]
    if len(found) != 1:
        sys.exit(f"README: no single python block starting {first_line!r}")
    return found[0]


base = site / "mysite" / "settings" / "base.py"
text = base.read_text()
lines = block("# settings.py").splitlines()
# "Add each line only if it is missing": skip the apps the project has already.
lines = [
    line
    for line in lines
    if not (m := re.match(r'\s*("[\w.]+"),', line)) or m.group(1) not in text
]
added = "\n".join(lines) + "\n"
mail = "EMAIL_PORT = %s  # the walk's SMTP sink\n" % smtp_port
if django.VERSION >= (6, 1):
    # README: MAILERS instead of the EMAIL_* lines, and no other EMAIL_* line.
    added = re.sub(r"\nEMAIL_\w+ = [^\n]*", "", added)
    added += "\n" + block("# settings.py on Django 6.1: instead of the EMAIL_* lines")
    mail = 'MAILERS["default"]["OPTIONS"]["port"] = %s  # the walk\'s sink\n' % smtp_port
# The walk's services instead of README's placeholders.
added = added.replace("redis://127.0.0.1:6379/0", redis_url)
added = added.replace("smtp.example.com", "127.0.0.1")
base.write_text(text + "\n# --- wagtail-paidwebinar (README) ---\n" + added + mail)
# The walk sends over SMTP: drop dev.py's console backend (README says so for 6.1).
dev = site / "mysite" / "settings" / "dev.py"
dev.write_text(re.sub(r"\nEMAIL_BACKEND = [^\n]*", "", dev.read_text()))

urls = site / "mysite" / "urls.py"
include = block("# urls.py — before Wagtail's catch-all").splitlines()
(line,) = [x for x in include if "wagtail_paidwebinar.urls" in x]
catch_all = '    path("", include(wagtail_urls)),'
text = urls.read_text()
if catch_all not in text:
    sys.exit("urls.py: no Wagtail catch-all line")
urls.write_text(text.replace(catch_all, line + "\n" + catch_all, 1))
print(base.read_text().split("# --- wagtail-paidwebinar (README) ---")[1])
EOF

cd "$SITE"
step "migrate, check, paidwebinar_grant"
"$PY" manage.py migrate -v0
"$PY" manage.py check --fail-level WARNING
"$PY" manage.py makemigrations --check --dry-run wagtail_paidwebinar
"$PY" manage.py paidwebinar_grant Editors

step "SMTP sink on $SMTP_PORT and rqworker mysite_webinars on $REDIS_URL"
"$PY" -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" \
  -c aiosmtpd.handlers.Mailbox "$W/maildir" >"$W/smtp.log" 2>&1 &
pids+=($!)
"$PY" - "$REDIS_URL" <<'EOF'
import sys

import redis
from rq import Queue

Queue("mysite_webinars", connection=redis.Redis.from_url(sys.argv[1])).empty()
EOF
"$PY" manage.py rqworker mysite_webinars --with-scheduler >"$W/worker.log" 2>&1 &
pids+=($!)

step "a webinar, a personal link with an e-mail, send_invitation"
"$PY" manage.py shell -v0 -c '
import datetime as dt
from django.utils import timezone
from wagtail.models import Page
from wagtail_paidwebinar.actions import generate_links
from wagtail_paidwebinar.mailing import send_invitation
from wagtail_paidwebinar.models import WebinarIndexPage, WebinarPage

home = Page.objects.get(depth=2)
index = home.add_child(instance=WebinarIndexPage(title="Webinars", slug="webinars"))
webinar = index.add_child(instance=WebinarPage(
    title="Fresh site webinar", slug="fresh",
    starts_at=timezone.now() + dt.timedelta(days=7), room_password="s3cret"))
result = generate_links(webinar, "Anna Nowak <anna@example.com>")
link = result.created[0]
print("status", send_invitation(link))
print("url", link.get_url())
' | tee "$W/invite.txt"
URL=$(sed -n 's/^url //p' "$W/invite.txt")

step "waiting for the e-mail in the sink"
"$PY" - "$W/maildir" "$URL" <<'EOF'
import email
import mailbox
import os
import sys
import time
from email import policy

folder, url = sys.argv[1:]
messages = []
for _ in range(120):
    if os.path.isdir(os.path.join(folder, "new")):  # the sink creates the Maildir
        box = mailbox.Maildir(folder, factory=None, create=False)
        messages = [
            email.message_from_bytes(box.get_bytes(key), policy=policy.default)
            for key in box.keys()
        ]
    if messages:
        break
    time.sleep(0.5)
else:
    sys.exit("no e-mail arrived within 60 s (see worker.log)")
(message,) = messages
text = message.get_body(("plain",)).get_content()
html = message.get_body(("html",)).get_content()
print("To:", message["To"], "| Subject:", message["Subject"])
assert message["To"].addresses[0].addr_spec == "anna@example.com", message["To"]
assert url in text and url.replace("&", "&amp;") in html, "no personal link"
assert "s3cret" in text, "no room password"
assert any(p.get_content_type() == "text/calendar" for p in message.walk()), "no .ics"
print("delivered with the personal link", url)
EOF

step "leaving out each required line: check names it"
cp mysite/settings/base.py "$W/base.py.orig"
cp mysite/urls.py "$W/urls.py.orig"
"$PY" - "$W" <<'EOF'
import re
import subprocess
import sys
from pathlib import Path

w = Path(sys.argv[1])
base, urls = Path("mysite/settings/base.py"), Path("mysite/urls.py")
base_text, urls_text = (w / "base.py.orig").read_text(), (w / "urls.py.orig").read_text()
catch_all = '    path("", include(wagtail_urls)),\n'
include = re.search(r'    path\("webinars/"[^\n]*\n', urls_text).group(0)
# (what is left out, file, pattern removed, replacement, the id check must report)
cases = [
    ("wagtail.contrib.settings", base, r'\n\s*"wagtail\.contrib\.settings",[^\n]*', "", "E002"),
    ("wagtail_modeladmin", base, r'\n\s*"wagtail_modeladmin",[^\n]*', "", "E003"),
    ("django_rq", base, r'\n\s*"django_rq",[^\n]*', "", "E004"),
    ("the URL include", urls, re.escape(include), "", "E005"),
    ("the URL include's order", urls, re.escape(include + catch_all), catch_all + include, "E006"),
    ("RQ_QUEUES", base, r"\nRQ_QUEUES = \{.*?\n\}", "", "E007"),
    ("WAGTAIL_PAIDWEBINAR_QUEUE", base, r"\nWAGTAIL_PAIDWEBINAR_QUEUE = [^\n]*", "", "E007"),
    ('RQ["COMMIT_MODE"]', base, r"\nRQ = [^\n]*", "", "E008"),
    ("the SMTP timeout", base, r'\nEMAIL_TIMEOUT = 20|, "timeout": 20', "", "W001"),
]
failed = []
for what, path, pattern, replacement, check_id in cases:
    original = base_text if path is base else urls_text
    changed, n = re.subn(pattern, replacement, original, count=1, flags=re.S)
    if not n:
        failed.append(f"{what}: README's line not found in {path}")
        continue
    path.write_text(changed)
    try:
        run = subprocess.run(
            [sys.executable, "manage.py", "check"], capture_output=True, text=True
        )
    finally:
        path.write_text(original)
    out = run.stdout + run.stderr
    named = f"wagtail_paidwebinar.{check_id}" in out
    hint = next((x.strip() for x in out.splitlines() if "HINT" in x), "")
    print(f"  without {what}: {check_id} {'named' if named else 'MISSING'} | {hint[:110]}")
    if not named:
        failed.append(f"{what}: check did not name {check_id}:\n{out[-2000:]}")
# --deploy: a process-local cache (no CACHES in a `wagtail start` project) and
# links on http://localhost (its default Site).
for case in (("--deploy", "W002"), ("--deploy", "W003")):
    out = subprocess.run(
        [sys.executable, "manage.py", "check", case[0]], capture_output=True, text=True
    )
    named = f"wagtail_paidwebinar.{case[1]}" in out.stdout + out.stderr
    print(f"  check {case[0]}: {case[1]} {'named' if named else 'MISSING'}")
    if not named:
        failed.append(f"check {case[0]} did not name {case[1]}")
if failed:
    sys.exit("\n".join(failed))
EOF
"$PY" manage.py check --fail-level WARNING >/dev/null
step "done: fresh site walk passed"
