"""Turns the gate's decisions (access.py) into responses: the HTTP side only.

``serve_webinar`` is what the ``on_serve_page`` hook calls for a WebinarPage: it reads
the request into an :class:`access.Visit`, asks :func:`access.decide`, has the rows
the decision names written (claims.py: claim, attendance, last-seen stamps) and the
throttle counters counted, sets the cookies and marks every response private and
never cached: the same URL shows the room to one browser and the teaser to the next,
so no shared cache may keep either.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from email.utils import parseaddr

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers

from . import access, claims, conf, moves, throttle, tokens
from .access import Decision, Outcome, Visit
from .claims import ClaimOutcome
from .mailing.render import local_time
from .models import AccessEventKind, MailingSettings, PersonalLink, WebinarPage
from .parsing import mask_email

logger = logging.getLogger(__name__)

# Responses to a URL carrying a token; see serve_webinar for why not "no-referrer".
REFERRER_POLICY = "strict-origin"

Callback = Callable[[WebinarPage, HttpRequest, tuple, dict], HttpResponse]

_TEMPLATES = {
    Outcome.CONFIRM: ("wagtail_paidwebinar/gate/confirm.html", 200),
    Outcome.ASK_PASSWORD: ("wagtail_paidwebinar/gate/password.html", 200),
    Outcome.REFUSE_GENERIC: ("wagtail_paidwebinar/gate/refused.html", 403),
    Outcome.REFUSE_IN_USE: ("wagtail_paidwebinar/gate/in_use.html", 403),
    Outcome.REFUSE_EXPIRED: ("wagtail_paidwebinar/gate/expired.html", 403),
    Outcome.REFUSE_REUSED: ("wagtail_paidwebinar/gate/reused.html", 403),
    Outcome.NOT_OPEN_YET: ("wagtail_paidwebinar/gate/window.html", 403),
    Outcome.CLOSED: ("wagtail_paidwebinar/gate/window.html", 403),
    Outcome.THROTTLED: ("wagtail_paidwebinar/gate/throttled.html", 429),
    Outcome.MOVE_CONFIRM: ("wagtail_paidwebinar/gate/move.html", 200),
    Outcome.CANCELLED: ("wagtail_paidwebinar/gate/cancelled.html", 410),
    Outcome.MOVED_AWAY: ("wagtail_paidwebinar/gate/moved.html", 403),
}
# The pages that offer "move to this browser" (or take its code).
_MOVE_PAGES = (Outcome.REFUSE_IN_USE, Outcome.MOVE_CONFIRM, Outcome.MOVED_AWAY)
# Wrong move codes count against the client like wrong tokens and passwords.
MOVE_SCOPE = "move"


def pass_cookie_name(page: WebinarPage) -> str:
    return f"{conf.get_setting('DEVICE_COOKIE_NAME')}_pass_{page.pk}"


def claim_cookie_name() -> str:
    """The cookie holding this browser's claim key (claims.device_secret_for_claim)."""
    return f"{conf.get_setting('DEVICE_COOKIE_NAME')}_claim"


def client_ip(request: HttpRequest) -> str:
    """REMOTE_ADDR; behind a proxy, set it from the proxy's header in a middleware."""
    return request.META.get("REMOTE_ADDR", "") or ""


def user_agent(request: HttpRequest) -> str:
    """The browser's User-Agent header ("" when it sent none)."""
    return request.headers.get("User-Agent", "")


def clean_path(request: HttpRequest) -> str:
    """The page's own path, without the token (or any query string).

    Never "//host/...": a scheme-relative path would send the visitor off-site.
    """
    return "/" + request.path.lstrip("/")


def read_visit(page: WebinarPage, request: HttpRequest) -> Visit:
    """The parts of ``request`` the decision needs."""
    method = "GET" if request.method == "HEAD" else (request.method or "GET")
    device_secret = request.COOKIES.get(conf.get_setting("DEVICE_COOKIE_NAME")) or None
    ip = client_ip(request)
    session_cookie = request.COOKIES.get(settings.SESSION_COOKIE_NAME, "")
    post = request.POST if method == "POST" else {}
    return Visit(
        method=method,
        now=timezone.now(),
        token=request.GET.get(conf.get_setting("TOKEN_PARAM")),
        device_secret=device_secret,
        pass_cookie=request.COOKIES.get(pass_cookie_name(page)),
        action=str(post.get(access.ACTION_FIELD, ""))[:20],
        claim_nonce=post.get(access.CLAIM_NONCE_FIELD) if post else None,
        password=post.get(access.PASSWORD_FIELD) if post else None,
        move_code=str(post.get(access.MOVE_CODE_FIELD, ""))[:20] if post else None,
        # A browser without cookies is told apart by address and user agent; a
        # script rotating either still meets the per-address ceiling.
        client=device_secret
        or session_cookie
        or f"ip:{ip}:ua:{request.headers.get('User-Agent', '')[:200]}",
        ip=ip,
    )


def room_visible(page: WebinarPage, request: HttpRequest) -> bool:
    """Would the page show its room to this browser? Asked by the room's materials.

    The same reading of the request and the same decision as the page view, minus
    what only the page URL carries: a token or a posted form in this request claims
    nothing here, writes nothing and counts no failure.
    """
    visit = dataclasses.replace(
        read_visit(page, request),
        method="GET",
        token=None,
        action="",
        claim_nonce=None,
        password=None,
    )
    return access.decide(page, visit).granted


def serve_webinar(
    page: WebinarPage,
    request: HttpRequest,
    callback: Callback,
    args: tuple,
    kwargs: dict,
) -> HttpResponse:
    """Serve ``page`` through the gate."""
    visit = read_visit(page, request)
    decision = access.decide(page, visit)
    new_secret = apply_side_effects(page, request, visit, decision)
    response = respond(page, request, visit, decision, callback, args, kwargs)
    if new_secret is not None:
        set_device_cookie(request, response, new_secret)
    add_never_cache_headers(response)
    if visit.token is not None:
        # The token must not travel in a Referer, to other sites or our own. Not
        # "no-referrer": under it Chromium sends "Origin: null" with the confirm
        # form's POST and Django's CSRF check refuses the claim (seen in a real
        # browser). "strict-origin" sends the bare origin only: no path, no token.
        response.headers["Referrer-Policy"] = REFERRER_POLICY
    if decision.outcome is not Outcome.TEASER or page.hide_from_search_engines:
        response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


def apply_side_effects(
    page: WebinarPage, request: HttpRequest, visit: Visit, decision: Decision
) -> str | None:
    """Throttle counters, attendance records, last-seen stamps and the rotation of
    the device credential; returns the new device secret when it was rotated."""
    if decision.failure_scope:
        throttle.record_failure(decision.failure_scope, page.pk, visit.client, visit.ip)
    if decision.event is not None:
        record_event(page, request, decision.event, decision.link)
    device = decision.device
    if decision.outcome is not Outcome.GRANT or device is None:
        return None
    if decision.rotate:
        # A rotating view writes the rotation only (one UPDATE); its entry, if
        # due, is recorded by the next view, which no longer rotates.
        return claims.rotate_device(
            device.secret_hash,
            visit.now,
            ip=client_ip(request),
            user_agent=user_agent(request),
        )
    claims.record_entry(
        page.pk,
        device.pk,
        device.link_id,
        device.last_seen_at,
        visit.now,
        ip=client_ip(request),
        user_agent=user_agent(request),
    )
    return None


def set_device_cookie(
    request: HttpRequest, response: HttpResponse, secret: str
) -> None:
    """The device cookie: the browser's credential for the links it holds."""
    response.set_cookie(
        conf.get_setting("DEVICE_COOKIE_NAME"),
        secret,
        max_age=int(conf.get_setting("DEVICE_COOKIE_AGE")),
        httponly=True,
        samesite="Lax",
        secure=request.is_secure(),
    )


def record_event(
    page: WebinarPage,
    request: HttpRequest,
    kind: AccessEventKind,
    link: PersonalLink | None,
) -> None:
    """An attendance record of this request (see claims.record_event)."""
    claims.record_event(
        page.pk,
        kind,
        link.pk if link is not None else None,
        ip=client_ip(request),
        user_agent=user_agent(request),
    )


def respond(
    page: WebinarPage,
    request: HttpRequest,
    visit: Visit,
    decision: Decision,
    callback: Callback,
    args: tuple,
    kwargs: dict,
) -> HttpResponse:
    outcome = decision.outcome
    if outcome in (Outcome.GRANT, Outcome.TEASER):
        request.paidwebinar_room = outcome is Outcome.GRANT
        request.paidwebinar_link = decision.link
        return callback(page, request, args, kwargs)
    if outcome is Outcome.CLAIM:
        return claim(page, request, visit, decision)
    if outcome is Outcome.MOVE_REQUEST:
        return move_request(page, request, decision)
    if outcome is Outcome.MOVE_CONFIRM:
        return move_confirm(page, request, visit, decision)
    if outcome is Outcome.REDIRECT_CLEAN:
        return HttpResponseRedirect(clean_path(request))
    if outcome is Outcome.PASSWORD_OK:
        response = HttpResponseRedirect(clean_path(request))
        response.set_cookie(
            pass_cookie_name(page),
            tokens.make_password_pass(page.pk, page.room_password),
            max_age=int(conf.get_setting("PASSWORD_PASS_AGE")),
            httponly=True,
            samesite="Lax",
            secure=request.is_secure(),
        )
        return response
    return render_gate_page(page, request, decision)


def render_gate_page(
    page: WebinarPage,
    request: HttpRequest,
    decision: Decision,
    *,
    extra: dict | None = None,
    status: int | None = None,
) -> HttpResponse:
    template, default_status = _TEMPLATES[decision.outcome]
    status = status or default_status
    context = {
        "page": page,
        "self": page,
        "request": request,
        "decision": decision,
        "outcome": decision.outcome.value,
        "link": decision.link,
        "action_field": access.ACTION_FIELD,
        "password_field": access.PASSWORD_FIELD,
        "claim_action": access.CLAIM_ACTION,
        "password_action": access.PASSWORD_ACTION,
        "retry_after_minutes": max(1, (decision.retry_after + 59) // 60),
        "room_visible": False,
    }
    if decision.outcome in (Outcome.REFUSE_IN_USE, Outcome.REFUSE_REUSED):
        context["contact_email"] = organiser_email(request)
    if decision.outcome is Outcome.MOVED_AWAY and decision.moved_at is not None:
        context["moved_at"] = local_time(page, decision.moved_at)
        context["contact_email"] = organiser_email(request)
        context["hide_lost_link"] = True
        # Its form posts to the page URL (decide_moved_away): no token in the page.
        context["form_action"] = clean_path(request)
    browser_key = None
    if decision.outcome in _MOVE_PAGES:
        # "Move to this device": the code works in the browser that asked for it,
        # told apart by its claim cookie (set here when it has none).
        if decision.outcome is not Outcome.MOVE_CONFIRM and moves.can_offer_move(
            decision.link, page
        ):
            context["move_to"] = mask_email(decision.link.email)
        context["move_request_action"] = access.MOVE_REQUEST_ACTION
        context["move_confirm_action"] = access.MOVE_CONFIRM_ACTION
        context["move_code_field"] = access.MOVE_CODE_FIELD
        context["move_minutes"] = max(1, int(conf.get_setting("MOVE_CODE_AGE")) // 60)
        browser_key = request.COOKIES.get(claim_cookie_name())
        if not claims.valid_browser_key(browser_key):
            browser_key = claims.new_browser_key()
    context.update(extra or {})
    if decision.outcome is Outcome.CONFIRM:
        # The nonce is signed for this link and for a key only this browser holds
        # (its claim cookie), so the form is worth nothing posted from elsewhere.
        browser_key = request.COOKIES.get(claim_cookie_name())
        if not claims.valid_browser_key(browser_key):
            browser_key = claims.new_browser_key()
        context["claim_nonce_field"] = access.CLAIM_NONCE_FIELD
        context["claim_nonce"] = claims.new_claim_nonce(decision.link.pk, browser_key)
    response = TemplateResponse(request, template, context, status=status)
    if browser_key is not None:
        response.set_cookie(
            claim_cookie_name(),
            browser_key,
            max_age=max(
                claims.CLAIM_NONCE_AGE, int(conf.get_setting("MOVE_CODE_AGE")) + 300
            ),
            httponly=True,
            samesite="Lax",
            secure=request.is_secure(),
        )
    if decision.outcome is Outcome.THROTTLED:
        response.headers["Retry-After"] = str(max(1, decision.retry_after))
    return response


def organiser_email(request: HttpRequest) -> str:
    """Whom a refused visitor should write to: the "Webinar mailing" site setting's
    reply-to or from address, else the address in DEFAULT_FROM_EMAIL."""
    try:
        mailing = MailingSettings.for_request(request)
        address = mailing.reply_to or mailing.from_email or ""
    except Exception:  # noqa: BLE001 - a refusal page must render whatever happens
        logger.debug("Gate: no organiser e-mail", exc_info=True)
        address = ""
    if not address:
        address = parseaddr(getattr(settings, "DEFAULT_FROM_EMAIL", "") or "")[1]
    # Django's own default is no address anyone can write to.
    return "" if address.endswith("@localhost") else address


def claim(
    page: WebinarPage, request: HttpRequest, visit: Visit, decision: Decision
) -> HttpResponse:
    """The confirm form was posted: bind the link to this browser."""
    link = decision.link
    assert link is not None  # noqa: S101 - decide_token returns CLAIM with a link
    # A new secret on every claim, never the cookie the browser sent: a device
    # cookie planted by someone else (cookie injection from a sibling domain) never
    # ends up bound to a real link.
    secret = claims.device_secret_for_claim(
        link.pk, visit.claim_nonce, request.COOKIES.get(claim_cookie_name())
    )
    outcome = claims.claim_link(
        link.pk, secret, user_agent=user_agent(request), ip=client_ip(request)
    )
    if outcome is ClaimOutcome.IN_USE:
        record_event(page, request, AccessEventKind.REFUSED_IN_USE, link)
        return render_gate_page(
            page, request, Decision(Outcome.REFUSE_IN_USE, link=link)
        )
    if outcome is ClaimOutcome.INVALID:
        return render_gate_page(page, request, Decision(Outcome.REFUSE_GENERIC))
    if visit.device_secret:
        claims.carry_bindings(visit.device_secret, secret, except_link_id=link.pk)
    _note_grant(request, page, link)
    response = HttpResponseRedirect(clean_path(request))
    set_device_cookie(request, response, secret)
    return response


def _note_grant(request: HttpRequest, page: WebinarPage, link: PersonalLink) -> None:
    """Privilege changes here: a browser that has a session gets a new session key
    (session fixation) and a note of the grant in it. A browser without one gets
    none: the device cookie is what admits it, and a session created only for the
    note would be read from the session store on every reload of the room (the
    user bar asks for ``request.user``) — the teaser's visitors pay no such read
    (bench/gate_load.py)."""
    if request.session.session_key is None:
        return
    request.session.cycle_key()
    grants = dict(request.session.get("paidwebinar_grants", {}))
    grants[str(page.pk)] = link.pk
    request.session["paidwebinar_grants"] = grants


# --- move to this device (moves.py) ------------------------------------------------

_MOVE_REFUSALS = {
    moves.MoveOutcome.NO_EMAIL: "no_email",
    moves.MoveOutcome.LIMIT: "limit",
    moves.MoveOutcome.THROTTLED: "throttled",
}


def _in_use_again(
    page: WebinarPage, request: HttpRequest, link: PersonalLink, problem: str
) -> HttpResponse:
    """The in-use page again, saying why the move did not happen."""
    return render_gate_page(
        page,
        request,
        Decision(Outcome.REFUSE_IN_USE, link=link),
        extra={"move_problem": problem},
    )


def move_request(
    page: WebinarPage, request: HttpRequest, decision: Decision
) -> HttpResponse:
    """ "E-mail me a code" was posted from the in-use page."""
    link = decision.link
    assert link is not None  # noqa: S101 - decide_token returns it with a link
    browser_key = request.COOKIES.get(claim_cookie_name())
    if not claims.valid_browser_key(browser_key):
        # The in-use page set the claim cookie; without it the code could not be
        # tied to this browser.
        return _in_use_again(page, request, link, "cookies")
    result = moves.request_move(
        link.pk, browser_key, ip=client_ip(request), user_agent=user_agent(request)
    )
    if result.outcome is moves.MoveOutcome.INVALID:
        return render_gate_page(page, request, Decision(Outcome.REFUSE_GENERIC))
    if result.outcome is not moves.MoveOutcome.SENT:
        return _in_use_again(page, request, link, _MOVE_REFUSALS[result.outcome])
    return render_gate_page(
        page,
        request,
        Decision(Outcome.MOVE_CONFIRM, link=link),
        extra={"move_to": mask_email(link.email)},
    )


def move_confirm(
    page: WebinarPage, request: HttpRequest, visit: Visit, decision: Decision
) -> HttpResponse:
    """The code was posted: move the link to this browser."""
    link = decision.link
    assert link is not None  # noqa: S101 - decide_token returns it with a link
    masked = {"move_to": mask_email(link.email)}
    state = throttle.check(MOVE_SCOPE, page.pk, visit.client, visit.ip)
    if state.blocked:
        return render_gate_page(
            page, request, Decision(Outcome.THROTTLED, retry_after=state.retry_after)
        )
    browser_key = request.COOKIES.get(claim_cookie_name())
    if not claims.valid_browser_key(browser_key):
        return _in_use_again(page, request, link, "cookies")
    result = moves.confirm_move(
        link.pk,
        browser_key,
        visit.move_code or "",
        ip=client_ip(request),
        user_agent=user_agent(request),
    )
    outcome = result.outcome
    if outcome is moves.MoveOutcome.INVALID:
        return render_gate_page(page, request, Decision(Outcome.REFUSE_GENERIC))
    if outcome is moves.MoveOutcome.WRONG_CODE:
        throttle.record_failure(MOVE_SCOPE, page.pk, visit.client, visit.ip)
        return render_gate_page(
            page,
            request,
            Decision(Outcome.MOVE_CONFIRM, link=link),
            extra={**masked, "move_error": "wrong"},
            status=400,
        )
    if outcome is moves.MoveOutcome.NO_CODE:
        return render_gate_page(
            page,
            request,
            Decision(Outcome.MOVE_CONFIRM, link=link),
            extra={**masked, "move_error": "expired"},
            status=400,
        )
    if outcome is moves.MoveOutcome.LIMIT:
        return _in_use_again(page, request, link, "limit")
    secret = result.secret
    assert secret is not None  # noqa: S101 - MOVED always carries the secret
    if visit.device_secret:
        claims.carry_bindings(visit.device_secret, secret, except_link_id=link.pk)
    _note_grant(request, page, link)
    response = HttpResponseRedirect(clean_path(request))
    set_device_cookie(request, response, secret)
    return response
