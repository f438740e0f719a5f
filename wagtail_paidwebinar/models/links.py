"""Personal links and the device slots a claim fills."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator

from django.conf import settings
from django.db import IntegrityError, connections, models, router
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .. import tokens


class LinkStatus(models.TextChoices):
    UNUSED = "unused", _("Unused")
    IN_USE = "in_use", _("In use")
    EXPIRED = "expired", _("Expired")
    REVOKED = "revoked", _("Revoked")


# Rows per INSERT: large enough to be fast, small enough for SQLite's variable limit
# on old versions and for PostgreSQL's statement size.
BATCH_SIZE = 1000
# Rows per INSERT ... unnest() on PostgreSQL (one array parameter per column).
PG_BATCH_SIZE = 10_000


def personal_url(page_url: str, token: str) -> str:
    """The one way a personal URL is written: the page URL plus ``?access=<token>``."""
    from ..conf import get_setting

    return f"{page_url}?{get_setting('TOKEN_PARAM')}={token}"


class PersonalLinkQuerySet(models.QuerySet):
    """The one home of "is this link live?" for querysets (see PersonalLink.problem
    for a single row): the gate, the ledger, the admin filter and the export ask it.
    """

    def live(self, now=None):
        """Links that still admit: not revoked and not expired at ``now``."""
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        )

    def with_status(self, status: str, now=None):
        """Links in ``status`` (a LinkStatus value), by PersonalLink.status's rules."""
        now = now or timezone.now()
        if status == LinkStatus.REVOKED:
            return self.filter(revoked_at__isnull=False)
        if status == LinkStatus.EXPIRED:
            return self.filter(revoked_at__isnull=True, expires_at__lte=now)
        if status == LinkStatus.IN_USE:
            return self.live(now).filter(claimed_at__isnull=False)
        if status == LinkStatus.UNUSED:
            return self.live(now).filter(claimed_at__isnull=True)
        return self

    def with_urls(self) -> Iterator[tuple[PersonalLink, str]]:
        return with_urls(self)

    def bulk_insert(self, common: dict, rows: list[dict]) -> list[PersonalLink]:
        """Insert one link per ``rows`` item (field attname -> value, merged over
        ``common``) in the caller's transaction; returns saved instances with pks.

        On PostgreSQL: one ``INSERT ... SELECT FROM unnest(arrays) RETURNING`` per
        PG_BATCH_SIZE rows, hand-written because ``bulk_create`` spends more time
        building instances and compiling SQL than the database needs, and 10,000
        links must take under a second (docs/sql.md). Columns come from the model's
        fields (a field added later gets its default) and pks are matched back
        through the unique random salt, not through the order of RETURNING.
        Elsewhere: ``bulk_create`` (SQLite returns pks too since 3.35).
        """
        if not rows:
            return []
        if "public_id" not in rows[0]:
            # A default is evaluated once per batch here; the public id is unique.
            rows = [{**row, "public_id": tokens.new_public_id()} for row in rows]
        alias = self._db or router.db_for_write(self.model, **self._hints)
        conn = connections[alias]
        if conn.vendor != "postgresql":
            links = [self.model(**common, **row) for row in rows]
            return self.using(alias).bulk_create(links, batch_size=BATCH_SIZE)

        meta = self.model._meta
        fields = [f for f in meta.concrete_fields if not f.primary_key]
        per_row = [f for f in fields if f.attname in rows[0]]
        fixed = {
            f.attname: common[f.attname] if f.attname in common else f.get_default()
            for f in fields
            if f.attname not in rows[0]
        }
        quote = conn.ops.quote_name
        # Values shared by every row are one scalar parameter each; per-row values
        # (name, e-mail, salt: plain strings) are one array each, unnested side by
        # side.
        select = ", ".join(
            f"u{per_row.index(f)}" if f in per_row else f"%s::{f.db_type(conn)}"
            for f in fields
        )
        arrays = ", ".join(f"%s::{f.db_type(conn)}[]" for f in per_row)
        aliases = ", ".join(f"u{i}" for i in range(len(per_row)))
        sql = (
            f"INSERT INTO {quote(meta.db_table)} "  # noqa: S608 - names from the model
            f"({', '.join(quote(f.column) for f in fields)}) "
            f"SELECT {select} FROM unnest({arrays}) AS u({aliases}) "
            f"RETURNING {quote(meta.pk.column)}, {quote(meta.get_field('salt').column)}"
        )
        scalars = [
            f.get_db_prep_save(fixed[f.attname], conn)
            for f in fields
            if f not in per_row
        ]

        pks: dict[str, int] = {}
        with conn.cursor() as cursor:
            for start in range(0, len(rows), PG_BATCH_SIZE):
                batch = rows[start : start + PG_BATCH_SIZE]
                arrays_params = [[row[f.attname] for row in batch] for f in per_row]
                cursor.execute(sql, [*scalars, *arrays_params])
                pks.update((salt, pk) for pk, salt in cursor.fetchall())
        if len(pks) != len(rows):  # pragma: no cover - would mean a lost row
            raise IntegrityError("bulk insert returned fewer rows than it was given")

        attnames = [f.attname for f in fields]
        names = [meta.pk.attname, *attnames]
        created = []
        for row in rows:
            merged = {**fixed, **row}
            values = [pks[row["salt"]], *(merged[name] for name in attnames)]
            created.append(self.model.from_db(alias, names, values))
        return created


def with_urls(links: Iterable[PersonalLink]) -> Iterator[tuple[PersonalLink, str]]:
    """``(link, absolute personal URL)`` pairs; each webinar's page URL is resolved
    once, not once per link (an export may list 10,000 links)."""
    from ..utils import absolute_page_url

    page_urls: dict[int, str] = {}
    for link in links:
        base = page_urls.get(link.webinar_id)
        if base is None:
            base = page_urls[link.webinar_id] = absolute_page_url(link.webinar)
        yield link, personal_url(base, link.token)


class PersonalLink(models.Model):
    """A link that admits one person (``webinar.max_devices_per_link`` browsers).

    The token is derived from ``public_id`` and ``salt`` (see tokens.py) and never
    stored.
    """

    webinar = models.ForeignKey(
        "wagtail_paidwebinar.WebinarPage",
        verbose_name=_("webinar"),
        on_delete=models.CASCADE,
        related_name="personal_links",
    )
    name = models.CharField(_("name"), max_length=200)
    email = models.EmailField(_("e-mail"), max_length=254, blank=True)
    # Lower-cased, NFC-normalised e-mail used for uniqueness ("" when none).
    email_normalized = models.CharField(max_length=254, blank=True, editable=False)
    salt = models.CharField(max_length=64, default=tokens.new_salt, editable=False)
    # The token names the link by this, never by the pk (which would tell every
    # participant how many links the site has issued).
    public_id = models.CharField(
        max_length=16, unique=True, default=tokens.new_public_id, editable=False
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    claimed_at = models.DateTimeField(_("first claimed at"), null=True, blank=True)
    last_seen_at = models.DateTimeField(_("last seen"), null=True, blank=True)

    objects = PersonalLinkQuerySet.as_manager()

    class Meta:
        verbose_name = _("personal link")
        verbose_name_plural = _("personal links")
        ordering = ["webinar", "name", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["webinar", "email_normalized"],
                condition=~Q(email_normalized=""),
                name="paidwebinar_link_unique_email",
            )
        ]
        indexes = [models.Index(fields=["webinar", "created_at"])]
        permissions = [
            ("view_personal_link_url", _("Can see personal link URLs")),
        ]

    def __str__(self) -> str:
        return self.name

    # --- tokens -------------------------------------------------------------------
    @property
    def token(self) -> str:
        """``<public id>.<mac>``. A stand-in never saved (the mailing's sample link,
        pk 0) keeps the pk form: id 0 names no link, so the gate refuses it."""
        ref = self.pk if self._state.adding and self.pk is not None else self.public_id
        return tokens.make_token(ref, self.webinar_id, self.salt)

    def get_url(self) -> str:
        """The absolute personal URL: the webinar page URL plus ``?access=<token>``."""
        from ..utils import absolute_page_url

        return personal_url(absolute_page_url(self.webinar), self.token)

    # --- state --------------------------------------------------------------------
    def problem(self, now=None) -> str | None:
        """Why the link no longer admits (``LinkStatus.REVOKED``/``EXPIRED``), or
        ``None`` while it is live; the row-level twin of ``objects.live()``."""
        if self.revoked_at is not None:
            return LinkStatus.REVOKED
        if self.expires_at is not None and self.expires_at <= (now or timezone.now()):
            return LinkStatus.EXPIRED
        return None

    def is_live(self, now=None) -> bool:
        return self.problem(now) is None

    def status(self, now=None) -> str:
        problem = self.problem(now)
        if problem is not None:
            return problem
        if self.claimed_at is not None:
            return LinkStatus.IN_USE
        return LinkStatus.UNUSED

    def get_status_display(self) -> str:
        return LinkStatus(self.status()).label


# Model.from_db() wants values in the models' field order: keep these in it.
_DEVICE_FIELDS = (
    "id",
    "link_id",
    "secret_hash",
    "created_at",
    "last_seen_at",
    "previous_secret_hash",
    "rotated_at",
)
_LINK_FIELDS = ("id", "webinar_id", "name", "expires_at", "revoked_at", "claimed_at")
_bound_sql_cache: dict[str, str] = {}


def _in_model_order(model, names: tuple[str, ...]) -> bool:
    order = [f.attname for f in model._meta.concrete_fields if f.attname in names]
    return tuple(order) == names


def _bound_sql(conn) -> str:
    """The gate's hot-path query, built once per connection alias (not at import).

    Identifiers come from the models' metadata; values are always parameters.
    """
    sql = _bound_sql_cache.get(conn.alias)
    if sql is None:
        if not (
            _in_model_order(LinkDevice, _DEVICE_FIELDS)
            and _in_model_order(PersonalLink, _LINK_FIELDS)
        ):
            raise RuntimeError("_DEVICE_FIELDS/_LINK_FIELDS out of field order")
        q = conn.ops.quote_name
        device, link = LinkDevice._meta, PersonalLink._meta

        def col(meta, name: str) -> str:
            return q(meta.get_field(name.removesuffix("_id")).column)

        columns = [f"d.{col(device, f)}" for f in _DEVICE_FIELDS]
        columns += [f"l.{col(link, f)}" for f in _LINK_FIELDS]
        sql = (
            f"SELECT {', '.join(columns)} "  # noqa: S608 - identifiers from _meta
            f"FROM {q(device.db_table)} d INNER JOIN {q(link.db_table)} l "
            f"ON l.{col(link, 'id')} = d.{col(device, 'link')} "
            # The current secret or the one rotated away last (grace and reuse
            # detection): two indexed lookups OR-ed in the one query.
            f"WHERE (d.{col(device, 'secret_hash')} = %s "
            f"OR d.{col(device, 'previous_secret_hash')} = %s) "
            f"AND l.{col(link, 'webinar')} = %s ORDER BY d.{col(device, 'id')}"
        )
        _bound_sql_cache[conn.alias] = sql
    return sql


def _aware(value):
    # SQLite hands back naive UTC datetimes to a raw cursor; the ORM would fix them.
    if isinstance(value, dt.datetime) and timezone.is_naive(value):
        return timezone.make_aware(value, dt.UTC)
    return value


class LinkDeviceQuerySet(models.QuerySet):
    def bound_for(self, webinar_id: int, secret_hash: str) -> list[LinkDevice]:
        """The device rows holding ``secret_hash`` (as their current secret or as the
        one rotated away last) for links of ``webinar_id``, each with its link, in
        one query: index lookups on the hash joined with the link row. This is the
        gate's hot path (every granted request runs it).

        Written out rather than built with the ORM on every request: compiling a
        select_related queryset costs more than running it, and the gate's budget
        is what Wagtail's own password check costs (docs/sql.md). Instances come
        back with only the fields the gate reads loaded (others are deferred).
        """
        alias = self._db or router.db_for_read(self.model, **self._hints)
        conn = connections[alias]
        with conn.cursor() as cursor:
            cursor.execute(_bound_sql(conn), [secret_hash, secret_hash, webinar_id])
            rows = cursor.fetchall()
        devices = []
        split = len(_DEVICE_FIELDS)
        for row in rows:
            values = [_aware(v) for v in row]
            link = PersonalLink.from_db(alias, _LINK_FIELDS, values[split:])
            device = self.model.from_db(alias, _DEVICE_FIELDS, values[:split])
            device.link = link
            devices.append(device)
        return devices


class LinkDevice(models.Model):
    """One browser bound to a personal link. Only a hash of its secret is kept."""

    link = models.ForeignKey(
        PersonalLink,
        verbose_name=_("personal link"),
        on_delete=models.CASCADE,
        related_name="devices",
    )
    secret_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(_("first seen"), default=timezone.now)
    last_seen_at = models.DateTimeField(_("last seen"), default=timezone.now)
    user_agent = models.CharField(_("browser"), max_length=255, blank=True)
    ip = models.CharField(_("network (truncated IP)"), max_length=64, blank=True)
    # Credential rotation (claims.rotate_device): the hash the secret had before the
    # last rotation, still honoured for DEVICE_ROTATE_GRACE seconds after
    # ``rotated_at``; presented later it means the cookie was copied.
    previous_secret_hash = models.CharField(max_length=64, blank=True, default="")
    rotated_at = models.DateTimeField(_("credential rotated at"), null=True, blank=True)

    objects = LinkDeviceQuerySet.as_manager()

    class Meta:
        verbose_name = _("device")
        verbose_name_plural = _("devices")
        constraints = [
            models.UniqueConstraint(
                fields=["secret_hash", "link"], name="paidwebinar_device_unique"
            )
        ]
        indexes = [
            models.Index(
                fields=["previous_secret_hash"], name="paidwebinar_device_previous"
            )
        ]

    def __str__(self) -> str:
        return self.user_agent or str(_("device"))

    def secret_issued_at(self) -> dt.datetime:
        """When the current secret was issued (claim or last rotation)."""
        return self.rotated_at or self.created_at


class DeviceMove(models.Model):
    """A request to move a personal link to a new browser ("Move to this device").

    The browser refused because the link is bound elsewhere asks for a one-time
    code; the code goes to the link's e-mail and, entered in that same browser,
    binds it in place of the old one (moves.py). The code itself is never stored:
    it is derived from ``salt`` with an HMAC keyed by ``SECRET_KEY`` (tokens.py), so
    a database dump alone moves nothing. ``moved_at`` marks the move done (the
    code used); ``voided_at`` a code that can no longer be used (superseded, too
    many wrong tries, another move won).
    """

    link = models.ForeignKey(
        PersonalLink,
        verbose_name=_("personal link"),
        on_delete=models.CASCADE,
        related_name="moves",
    )
    salt = models.CharField(max_length=64, default=tokens.new_salt, editable=False)
    # SHA-256 of the claim key of the browser that asked: the code works there only.
    browser_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(_("requested at"), default=timezone.now)
    expires_at = models.DateTimeField(_("code expires at"))
    attempts = models.PositiveSmallIntegerField(_("wrong codes entered"), default=0)
    moved_at = models.DateTimeField(_("moved at"), null=True, blank=True)
    voided_at = models.DateTimeField(_("code voided at"), null=True, blank=True)
    user_agent = models.CharField(_("browser"), max_length=255, blank=True)
    ip = models.CharField(_("network (truncated IP)"), max_length=64, blank=True)
    # The secret hash of the device the move removed (the most recently seen one
    # when it removed several): that browser, presenting its old cookie, is told
    # its access moved rather than shown the bare teaser. Looked up only when a
    # device cookie matches no bound device (access.decide_clean), by this index.
    moved_away_hash = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        verbose_name = _("move to a new browser")
        verbose_name_plural = _("moves to a new browser")
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["link", "created_at"], name="paidwebinar_move_link"),
            models.Index(
                fields=["moved_away_hash"],
                name="paidwebinar_move_away",
                condition=~models.Q(moved_away_hash=""),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.link_id} @ {self.created_at:%Y-%m-%d %H:%M}"
