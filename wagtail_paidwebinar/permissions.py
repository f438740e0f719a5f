"""Who may do what in the plugin's admin: the one home of every permission rule.

Views, the snippet viewset, exports and previews ask these functions instead of
restating codenames, so the listing, the CSV export, the copy buttons and the
mailing preview agree because they call the same code (as Wagtail's redirects app
keeps its rules in its own ``permissions.py``).
"""

from __future__ import annotations

APP = "wagtail_paidwebinar"
VIEW_LINK_URLS = f"{APP}.view_personal_link_url"
ADD_MAILING = f"{APP}.add_mailing"
CHANGE_MAILING = f"{APP}.change_mailing"
SEND_MAILING = f"{APP}.send_mailing"
EXPORT_MAILING = f"{APP}.export_mailing"
VIEW_ATTENDANCE = f"{APP}.view_accessevent"
ADD_LINK = f"{APP}.add_personallink"
VIEW_WEBHOOK_DELIVERIES = f"{APP}.view_webhookdelivery"


def can_see_link_urls(user) -> bool:
    """May ``user`` see personal link URLs (copy, export, unmasked previews)?

    A URL admits its holder, so this is the one check every place that shows one
    asks; ``is_active`` is checked here too so a custom auth backend that forgets
    it still cannot leak URLs to a disabled account.
    """
    return user.is_active and user.has_perm(VIEW_LINK_URLS)


def can_add_mailing(user) -> bool:
    """May ``user`` start a new mailing (the "Send invitation" button)?"""
    return user.has_perm(ADD_MAILING)


def can_compose_mailing(user) -> bool:
    """May ``user`` write mailings (create or change a draft, send a test)?"""
    return user.has_perm(ADD_MAILING) or user.has_perm(CHANGE_MAILING)


def can_send_mailing(user) -> bool:
    """May ``user`` start, pause, resume, cancel or retry a mailing?"""
    return user.has_perm(SEND_MAILING)


def can_preview_mailing(user) -> bool:
    """May ``user`` see a mailing's rendered preview? (Writers and senders.)"""
    return can_compose_mailing(user) or can_send_mailing(user)


def can_export_mailing(user) -> bool:
    """May ``user`` export a mailing's recipients or copy its ready messages?

    Both show personal URLs, so both permissions are needed.
    """
    return user.has_perm(EXPORT_MAILING) and can_see_link_urls(user)


def can_view_attendance(user, page) -> bool:
    """May ``user`` see the attendance of webinar ``page``? Editors of the page, or
    holders of the access-event view permission."""
    if not user.is_authenticated:
        return False
    if user.has_perm(VIEW_ATTENDANCE):
        return True
    return page.permissions_for_user(user).can_edit()


def can_view_payments(user) -> bool:
    """May ``user`` see the payment webhook deliveries? Those who may issue links
    (a delivery is a link being issued) or hold the delivery view permission."""
    return user.is_active and (
        user.has_perm(ADD_LINK) or user.has_perm(VIEW_WEBHOOK_DELIVERIES)
    )


def can_test_webhook(user) -> bool:
    """May ``user`` see "Test the webhook"? Its example request, sent as shown,
    issues a link: only those who may issue links."""
    return user.is_active and user.has_perm(ADD_LINK)


def attendance_webinars(user):
    """The webinar pages whose attendance ``user`` may see (see
    :func:`can_view_attendance`), newest first; the "Attendance" menu item shows
    when there is one."""
    from wagtail.permission_policies.pages import PagePermissionPolicy

    from .models import WebinarPage

    pages = WebinarPage.objects.all()
    if not (user.is_authenticated and user.is_active):
        return pages.none()
    if not user.has_perm(VIEW_ATTENDANCE):
        editable = PagePermissionPolicy().instances_user_has_any_permission_for(
            user, ["change"]
        )
        pages = pages.filter(pk__in=editable.values("pk"))
    return pages.order_by("-starts_at", "-pk")


def can_view_any_attendance(user) -> bool:
    """May ``user`` open the attendance index (the "Attendance" menu item)?"""
    if not (user.is_authenticated and user.is_active):
        return False
    return user.has_perm(VIEW_ATTENDANCE) or attendance_webinars(user).exists()


def can_change_schedule(user, page) -> bool:
    """Notify participants of a new time, or cancel the webinar: a change of the
    published page that e-mails everyone, so publishing the page and sending
    mailings are both needed."""
    return (
        user.is_active
        and user.has_perm(SEND_MAILING)
        and page.permissions_for_user(user).can_publish()
    )
