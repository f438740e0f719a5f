"""Business operations on personal links: generate, revoke, reset devices, re-issue.

Views, the CLI and other parts of the plugin (mailing) call these; each one is
audited with Wagtail's ``log_action`` (never with a token). Expected failures (bad
lines, duplicates) come back as values in :class:`GenerateResult`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from wagtail.log_actions import LogFormatter, log

from . import tokens
from .models import LinkDevice, PersonalLink, WebinarPage
from .models.links import with_urls as links_with_urls
from .parsing import LineIssue, ParseResult, name_key, parse_entries, parse_text

# Audit-log action names are stored in every log entry: one form,
# "wagtail_paidwebinar.link.<verb>", and never renamed after a release.
ACTION_GENERATE = "wagtail_paidwebinar.link.generate"
ACTION_REVOKE = "wagtail_paidwebinar.link.revoke"
ACTION_RESET = "wagtail_paidwebinar.link.reset_devices"
ACTION_REISSUE = "wagtail_paidwebinar.link.reissue"


@dataclass
class GenerateResult:
    """What :func:`generate_links` did.

    ``created`` holds saved links (with pks); ``duplicates``, ``errors`` and
    ``warnings`` are :class:`~wagtail_paidwebinar.parsing.LineIssue` lists. With
    ``all_or_nothing`` and any error, ``aborted`` is true and nothing was created.
    """

    created: list[PersonalLink] = field(default_factory=list)
    duplicates: list[LineIssue] = field(default_factory=list)
    errors: list[LineIssue] = field(default_factory=list)
    warnings: list[LineIssue] = field(default_factory=list)
    aborted: bool = False
    # Names-only links that received the e-mail of a matching line (with
    # ``attach_emails``) instead of a second link for the same person.
    attached: list[PersonalLink] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no line was rejected."""
        return not self.errors


def _real_user(user):
    return (
        user if user is not None and getattr(user, "is_authenticated", False) else None
    )


def _parse(text_or_entries: str | Iterable[tuple[str, str | None]]) -> ParseResult:
    if isinstance(text_or_entries, str):
        return parse_text(text_or_entries)
    return parse_entries(text_or_entries)


def generate_links(
    webinar: WebinarPage,
    text_or_entries: str | Iterable[tuple[str, str | None]],
    *,
    expires_at: dt.datetime | None = None,
    user=None,
    all_or_nothing: bool = False,
    attach_emails: bool = False,
) -> GenerateResult:
    """Create one personal link per participant of a paste or ``(name, email)`` pairs.

    Lines are validated and de-duplicated (see :mod:`~wagtail_paidwebinar.parsing`); an
    e-mail the webinar already has a link for is a duplicate, a known name without an
    e-mail only warns (two people may share a name). With ``attach_emails`` a line
    ``Name, e-mail`` whose name matches a link that has no e-mail gives that link the
    address instead of creating a second link (see :func:`preview_generation`).
    Valid lines are created in one transaction with ``bulk_create``; with
    ``all_or_nothing`` a single error creates nothing.
    """
    parsed = _parse(text_or_entries)
    result = GenerateResult(
        duplicates=list(parsed.duplicates),
        errors=list(parsed.errors),
        warnings=list(parsed.warnings),
    )
    if expires_at is not None and timezone.is_naive(expires_at):
        expires_at = timezone.make_aware(expires_at)
    if expires_at is not None and expires_at <= timezone.now():
        result.errors.append(
            LineIssue(0, "", str(_("The expiry date is in the past.")))
        )
        result.aborted = True
        return result
    if (all_or_nothing and result.errors) or parsed.over_limit:
        # Over MAX_LINES the rest of the list was never read: creating the first
        # part would look like success and lose the others.
        result.aborted = True
        return result

    user = _real_user(user)
    # A concurrent batch for the same webinar can insert one of our e-mails between
    # our check and our insert; the unique constraint catches it, and a retry sees
    # the new row and reports it as a duplicate.
    for attempt in range(3):
        try:
            with transaction.atomic():
                created, duplicates, warnings, attached = _insert(
                    webinar, parsed, expires_at, user, all_or_nothing, attach_emails
                )
                if created is None:
                    break
                if created or attached:
                    log(
                        webinar,
                        ACTION_GENERATE,
                        user=user,
                        data={
                            "count": len(created),
                            "duplicates": len(duplicates),
                            "attached": len(attached),
                        },
                    )
            break
        except IntegrityError:
            if attempt == 2:
                result.errors.append(
                    LineIssue(
                        0,
                        "",
                        str(
                            _(
                                "Links for this webinar were being generated at "
                                "the same time; nothing was created. Try again."
                            )
                        ),
                    )
                )
                result.aborted = True
                return result
    result.duplicates += duplicates
    result.warnings += warnings
    if created is None:
        result.aborted = True
        return result
    result.created = created
    result.attached = attached
    result.duplicates.sort(key=lambda issue: issue.line)
    result.warnings.sort(key=lambda issue: issue.line)
    return result


@dataclass
class ExistingMatches:
    """How a parse meets the webinar's existing links (nothing saved).

    ``attach``: ``(entry, link)`` pairs, a line with an e-mail whose name matches a
    link without one. ``same_name``: ``(entry, link)``, a line without an e-mail
    whose name already has a link. ``duplicates``: LineIssues, e-mails that already
    have a link.
    """

    attach: list[tuple] = field(default_factory=list)
    same_name: list[tuple] = field(default_factory=list)
    duplicates: list[LineIssue] = field(default_factory=list)

    @property
    def needs_confirmation(self) -> bool:
        return bool(self.attach or self.same_name)


def match_existing(webinar: WebinarPage, entries) -> ExistingMatches:
    """Compare parsed entries with the webinar's links: the one place that decides
    "is this person already here?" for the preview and for the insert."""
    by_email: dict[str, PersonalLink] = {}
    by_name: dict[str, PersonalLink] = {}
    names_only: dict[str, list[PersonalLink]] = {}
    for link in PersonalLink.objects.filter(webinar=webinar).only(
        "pk", "name", "email", "email_normalized"
    ):
        key = name_key(link.name)
        if link.email_normalized:
            by_email[link.email_normalized] = link
        else:
            names_only.setdefault(key, []).append(link)
        by_name.setdefault(key, link)
    matches = ExistingMatches()
    for entry in entries:
        email_normalized = entry.email_normalized
        if email_normalized and email_normalized in by_email:
            matches.duplicates.append(
                LineIssue(
                    entry.line,
                    entry.raw,
                    str(
                        _("this e-mail address already has a link (%(name)s)")
                        % {"name": by_email[email_normalized].name}
                    ),
                )
            )
        elif email_normalized and names_only.get(entry.name_key):
            # Pair lines with names-only links of that name in order: two
            # "Jan Kowalski" lines fill two such links, never one twice.
            matches.attach.append((entry, names_only[entry.name_key].pop(0)))
        elif not email_normalized and entry.name_key in by_name:
            matches.same_name.append((entry, by_name[entry.name_key]))
    return matches


def preview_generation(
    webinar: WebinarPage, text_or_entries: str | Iterable[tuple[str, str | None]]
) -> ExistingMatches:
    """What generating from this input would do to existing links, before anything
    is created: the admin shows it and asks to confirm."""
    return match_existing(webinar, _parse(text_or_entries).entries)


def _insert(webinar, parsed, expires_at, user, all_or_nothing, attach_emails):
    """Compare with existing links, attach e-mails and insert; ``created`` is None
    when aborted."""
    matches = match_existing(webinar, parsed.entries)
    duplicates = list(matches.duplicates)
    skip = {issue.line for issue in duplicates}
    attach = matches.attach if attach_emails else []
    skip.update(entry.line for entry, _link in attach)
    warnings = [
        LineIssue(
            entry.line,
            entry.raw,
            str(_("a link for someone with this name already exists; created another")),
        )
        for entry, _link in matches.same_name
    ]
    to_create = [
        {
            "name": entry.name,
            "email": entry.email,
            "email_normalized": entry.email_normalized,
            "salt": tokens.new_salt(),
        }
        for entry in parsed.entries
        if entry.line not in skip
    ]
    if all_or_nothing and parsed.errors:
        return None, duplicates, warnings, []
    attached = []
    for entry, link in attach:
        # Only while the link still has no e-mail: a concurrent edit wins.
        if PersonalLink.objects.filter(pk=link.pk, email_normalized="").update(
            email=entry.email, email_normalized=entry.email_normalized
        ):
            link.email, link.email_normalized = entry.email, entry.email_normalized
            link._state.fields_cache["webinar"] = webinar
            attached.append(link)
    common = {
        "webinar_id": webinar.pk,
        "created_at": timezone.now(),
        "created_by_id": user.pk if user is not None else None,
        "expires_at": expires_at,
    }
    created = PersonalLink.objects.bulk_insert(common, to_create)
    for link in created:
        # Callers build URLs from link.webinar: no query per link.
        link._state.fields_cache["webinar"] = webinar
    return created, duplicates, warnings, attached


def revoke_link(link: PersonalLink, *, user=None) -> bool:
    """Revoke a link (effective on the holder's next request).

    Returns False when it already was revoked."""
    now = timezone.now()
    with transaction.atomic():
        changed = PersonalLink.objects.filter(
            pk=link.pk, revoked_at__isnull=True
        ).update(revoked_at=now)
        if changed:
            link.revoked_at = now
            log(link, ACTION_REVOKE, user=_real_user(user), data=_log_data(link))
    return bool(changed)


def reset_link_devices(link: PersonalLink, *, user=None) -> int:
    """Forget the browsers bound to a link so it can be claimed again.

    Returns how many were forgotten."""
    with transaction.atomic():
        removed, _detail = LinkDevice.objects.filter(link=link).delete()
        PersonalLink.objects.filter(pk=link.pk).update(claimed_at=None)
        link.claimed_at = None
        log(
            link,
            ACTION_RESET,
            user=_real_user(user),
            data={**_log_data(link), "devices": removed},
        )
    return removed


def reissue_link(link: PersonalLink, *, user=None) -> PersonalLink:
    """Rotate the link's salt: the old URL stops working and bound devices are
    forgotten. The link keeps its name, e-mail, expiry and revocation state."""
    with transaction.atomic():
        LinkDevice.objects.filter(link=link).delete()
        link.salt = tokens.new_salt()
        link.claimed_at = None
        link.save(update_fields=["salt", "claimed_at"])
        log(link, ACTION_REISSUE, user=_real_user(user), data=_log_data(link))
    return link


def _log_data(link: PersonalLink) -> dict:
    # Enough to tell links apart in the history; never the token or the salt.
    return {"webinar_id": link.webinar_id, "name": link.name}


# --- export ------------------------------------------------------------------------


def export_header(*, with_urls: bool = True) -> list[str]:
    header = [_("Name"), _("E-mail"), _("Link"), _("Expires at"), _("Status")]
    if not with_urls:
        del header[2]
    return [str(h) for h in header]


def export_rows(
    links: Iterable[PersonalLink], *, with_urls: bool = True
) -> Iterator[list]:
    """Rows for a CSV export: name, e-mail, link, expiry (local ISO time), status."""
    pairs = links_with_urls(links) if with_urls else ((link, None) for link in links)
    for link, url in pairs:
        expires = (
            timezone.localtime(link.expires_at).isoformat(timespec="minutes")
            if link.expires_at
            else ""
        )
        row = [link.name, link.email, expires, str(link.get_status_display())]
        if url is not None:
            row.insert(2, url)
        yield row


def register_log_actions(actions) -> None:
    """Labels of our audit log actions (called by the ``register_log_actions`` hook)."""

    @actions.register_action(ACTION_GENERATE)
    class GenerateFormatter(LogFormatter):
        label = _("Generate personal links")

        def format_message(self, log_entry):
            count = (log_entry.data or {}).get("count", 0)
            return ngettext(
                "Generated %(count)s personal link",
                "Generated %(count)s personal links",
                count,
            ) % {"count": count}

    actions.register_action(
        ACTION_REVOKE, _("Revoke personal link"), _("Personal link revoked")
    )
    actions.register_action(
        ACTION_RESET, _("Reset link devices"), _("Personal link devices reset")
    )
    actions.register_action(
        ACTION_REISSUE, _("Re-issue personal link"), _("Personal link re-issued")
    )
