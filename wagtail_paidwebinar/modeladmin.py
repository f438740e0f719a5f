"""The invitation pages of the "Webinars" admin menu, built with wagtail-modeladmin.

All use of wagtail-modeladmin is confined to this module (it is in maintenance mode),
so moving to Wagtail's ModelViewSet later touches this file and the tests' URL helper
(``tests/utils.admin_url``). The extra pages (import, export, preview, send,
progress...) are framework-neutral views in ``views/subscribers.py`` and
``views/mailings.py``; :class:`ModelAdminViewMixin` adapts them (permission checks,
URLs, the listing's filter query string) and ``get_admin_urls_for_registration``
registers them.
"""

from __future__ import annotations

from functools import partial

from django.contrib.admin import display as admin_display
from django.contrib.admin.utils import quote
from django.db import models, transaction
from django.db.models import Count, Q
from django.shortcuts import redirect
from django.urls import re_path, reverse
from django.utils.translation import gettext_lazy as _
from wagtail import hooks
from wagtail.admin import messages
from wagtail.admin.panels import ObjectList
from wagtail.admin.widgets import Button
from wagtail.log_actions import log
from wagtail_modeladmin.helpers import AdminURLHelper, ButtonHelper
from wagtail_modeladmin.options import ModelAdmin, ModelAdminGroup
from wagtail_modeladmin.views import CreateView, DeleteView, EditView, IndexView

from . import mailing as api
from . import permissions
from .csvutils import excel_url, uses_decimal_comma
from .filters import MailingKindFilter
from .forms.invitations import MailingForm, SubscriberForm
from .menu import MENU_HOOK, ORDER
from .models import (
    Mailing,
    MailingStatus,
    RecipientStatus,
    Signature,
    Subscriber,
    SubscriberList,
    WebinarPage,
)
from .paginators import CountedPaginator
from .views import mailings as mailing_views
from .views import subscribers as subscriber_views

TEMPLATES = "wagtail_paidwebinar/admin/invitations/"

# Every button, heading and empty state of the listings in its own sentence.
# wagtail-modeladmin builds them from verbose names ("Add %(object)s", "New" +
# name, "No %(name)s have been created yet"), which cannot be grammatical in
# Polish ("Dodaj subskrybent", "Nowy Wysyłka"): each word needs its own case and
# gender, so each sentence is translated whole.
TEXTS = {
    Subscriber: {
        "add": _("Add subscriber"),
        "add_title": _("Add a new subscriber"),
        "new": _("New subscriber"),
        "empty": _("There are no subscribers yet."),
        "no_results": _("No subscribers match your search or filters."),
        "search": _("Search subscribers"),
        "created": _("Subscriber “%(object)s” added."),
        "updated": _("Subscriber “%(object)s” saved."),
        "not_created": _("The subscriber could not be added; see the errors below."),
        "not_saved": _("The subscriber could not be saved; see the errors below."),
        "delete_question": _("Delete this subscriber?"),
        "delete_title": _("Delete subscriber"),
        "deleted": _("Subscriber “%(object)s” deleted."),
        "edit_title": _("Editing subscriber"),
    },
    SubscriberList: {
        "add": _("Add list"),
        "add_title": _("Add a new subscriber list"),
        "new": _("New subscriber list"),
        "empty": _("There are no subscriber lists yet."),
        "no_results": _("No subscriber lists match your search."),
        "search": _("Search lists"),
        "created": _("List “%(object)s” added."),
        "updated": _("List “%(object)s” saved."),
        "not_created": _("The list could not be added; see the errors below."),
        "not_saved": _("The list could not be saved; see the errors below."),
        "delete_question": _(
            "Delete this list? Its subscribers stay, only the list goes."
        ),
        "delete_title": _("Delete subscriber list"),
        "deleted": _("List “%(object)s” deleted; its subscribers stay."),
        "edit_title": _("Editing subscriber list"),
    },
    Signature: {
        "add": _("Add signature"),
        "add_title": _("Add a new signature"),
        "new": _("New signature"),
        "empty": _("There are no signatures yet."),
        "no_results": _("No signatures match your search."),
        "search": _("Search signatures"),
        "created": _("Signature “%(object)s” added."),
        "updated": _("Signature “%(object)s” saved."),
        "not_created": _("The signature could not be added; see the errors below."),
        "not_saved": _("The signature could not be saved; see the errors below."),
        "delete_question": _("Delete this signature?"),
        "delete_title": _("Delete signature"),
        "deleted": _("Signature “%(object)s” deleted."),
        "edit_title": _("Editing signature"),
    },
    Mailing: {
        "add": _("Add mailing"),
        "add_title": _("Add a new mailing"),
        "new": _("New mailing"),
        "empty": _("There are no mailings yet."),
        "no_results": _("No mailings match your search or filters."),
        "search": _("Search mailings"),
        "created": _("Mailing “%(object)s” saved."),
        "updated": _("Mailing “%(object)s” saved."),
        "not_created": _("The mailing could not be saved; see the errors below."),
        "not_saved": _("The mailing could not be saved; see the errors below."),
        "delete_question": _("Delete this mailing and its delivery log?"),
        "delete_title": _("Delete mailing"),
        "deleted": _("Mailing “%(object)s” and its delivery log deleted."),
        "edit_title": _("Editing mailing"),
    },
}


class TextsButtonHelper(ButtonHelper):
    """The "Add" button with its own sentence instead of "Add" + verbose name."""

    def add_button(self, classnames_add=None, classnames_exclude=None):
        button = super().add_button(classnames_add, classnames_exclude)
        texts = TEXTS[self.model]
        button.update(label=texts["add"], title=texts["add_title"])
        return button


class TextsIndexView(IndexView):
    """The listing with whole-sentence empty states, search placeholder and item
    count."""

    paginator_class = CountedPaginator

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["pw_texts"] = TEXTS[self.model]
        return context


class TextsFormMixin:
    """Create/edit pages titled and answered in whole sentences."""

    def get_success_message(self, instance):
        key = "created" if isinstance(self, CreateView) else "updated"
        return TEXTS[self.model][key] % {"object": instance}

    def get_error_message(self):
        key = "not_created" if isinstance(self, CreateView) else "not_saved"
        return TEXTS[self.model][key]


class TextsCreateView(TextsFormMixin, CreateView):
    def get_page_title(self):
        return TEXTS[self.model]["new"]

    def get_page_subtitle(self):
        return ""

    def get_meta_title(self):
        return TEXTS[self.model]["new"]


class TextsEditView(TextsFormMixin, EditView):
    def get_meta_title(self):
        return TEXTS[self.model]["edit_title"]


class TextsDeleteView(DeleteView):
    def get_meta_title(self):
        return TEXTS[self.model]["delete_title"]

    def confirmation_message(self):
        return TEXTS[self.model]["delete_question"]

    def post(self, request, *args, **kwargs):
        # wagtail-modeladmin's own post says "<verbose name> '<object>' deleted.";
        # the same steps with a whole translated sentence.
        message = TEXTS[self.model]["deleted"] % {"object": self.instance}
        try:
            with transaction.atomic():
                log(instance=self.instance, action="wagtail.delete")
                self.delete_instance()
        except models.ProtectedError:
            # The library's page listing what still refers to the object.
            return super().post(request, *args, **kwargs)
        messages.success(request, message)
        return redirect(self.index_url)


class TextsModelAdmin(ModelAdmin):
    """A ModelAdmin whose views use :data:`TEXTS`."""

    button_helper_class = TextsButtonHelper
    index_view_class = TextsIndexView
    create_view_class = TextsCreateView
    edit_view_class = TextsEditView
    delete_view_class = TextsDeleteView
    index_template_name = TEMPLATES + "index.html"


class URLHelper(AdminURLHelper):
    """Object URLs accept digits only: "/edit/abc/" is a 404, not a 500 from the
    database refusing to compare an integer primary key with text."""

    def _get_object_specific_action_url_pattern(self, action):
        return rf"^{self.base_url_path}/{action}/(?P<instance_pk>[0-9]{{1,18}})/$"


class ModelAdminViewMixin:
    """The adapter between an Invitations view (``views.base.InvitationsView``) and
    the ``ModelAdmin`` that registers it: the one place those views meet
    modeladmin's permission and URL helpers."""

    model_admin = None

    def user_can(self, user, action: str, obj=None) -> bool:
        helper = self.model_admin.permission_helper
        if obj is None:
            return getattr(helper, f"user_can_{action}")(user)
        return getattr(helper, f"user_can_{action}_obj")(user, obj)

    def index_url(self) -> str:
        return self.model_admin.url_helper.index_url

    def index_label(self) -> str:
        return self.model_admin.get_menu_label()

    def action_url(self, action: str, *args) -> str:
        return self.model_admin.url_helper.get_action_url(action, *args)

    def listing_filters(self) -> dict:
        return self.model_admin.listing_filters(self.request.GET)


def _adapted(view_class: type, model_admin, **initkwargs):
    """``view_class`` as a view function driven by ``model_admin``."""
    adapted = type(view_class.__name__, (ModelAdminViewMixin, view_class), {})
    return adapted.as_view(model_admin=model_admin, **initkwargs)


def _extra_urls(model_admin, views_by_action: dict) -> tuple:
    helper = model_admin.url_helper
    urls = []
    for action, view in views_by_action.items():
        if action in ("import", "export_all"):
            pattern = rf"^{helper.base_url_path}/{action}/$"
        else:
            pattern = helper.get_action_url_pattern(action)
        urls.append(re_path(pattern, view, name=helper.get_action_url_name(action)))
    return tuple(urls)


# --- subscribers -----------------------------------------------------------------


class SubscriberIndexView(TextsIndexView):
    """The listing plus "Import CSV" and "Export CSV" (keeping the filters)."""

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        helper = self.url_helper
        query = self.request.GET.copy()
        query.pop("p", None)
        context["export_url"] = reverse(helper.get_action_url_name("export_all")) + (
            f"?{query.urlencode()}" if query else ""
        )
        if uses_decimal_comma():
            context["excel_export_url"] = excel_url(context["export_url"])
        if self.permission_helper.user_can_create(self.request.user):
            context["import_url"] = reverse(helper.get_action_url_name("import"))
        return context


class SubscriberAdmin(TextsModelAdmin):
    url_helper_class = URLHelper
    model = Subscriber
    menu_label = _("Subscribers")
    menu_icon = "user"
    list_display = ("name", "email", "list_names", "subscribed", "source")
    list_filter = ("subscribed", "lists")
    search_fields = ("name", "email")
    list_per_page = 50
    index_template_name = TEMPLATES + "subscriber_index.html"
    index_view_class = SubscriberIndexView
    edit_handler = ObjectList(Subscriber.panels, base_form_class=SubscriberForm)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("lists")

    def listing_filters(self, query) -> dict:
        """The index's list and status filters and search (modeladmin's query
        string) as arguments of :func:`subscribers.filtered_subscribers`."""
        list_id = query.get("lists__id__exact", "")
        status = query.get("subscribed__exact", "")
        return {
            "list_id": int(list_id)
            if list_id.isascii() and list_id.isdigit()
            else None,
            "subscribed": status == "1" if status in ("0", "1") else None,
            "search": query.get("q", "").strip(),
        }

    @admin_display(description=_("lists"))
    def list_names(self, obj: Subscriber) -> str:
        return ", ".join(lst.name for lst in obj.lists.all())

    def get_admin_urls_for_registration(self):
        return super().get_admin_urls_for_registration() + _extra_urls(
            self,
            {
                "import": _adapted(subscriber_views.SubscriberImportView, self),
                "export_all": _adapted(subscriber_views.SubscriberExportView, self),
            },
        )


class SubscriberListAdmin(TextsModelAdmin):
    url_helper_class = URLHelper
    model = SubscriberList
    menu_label = _("Subscriber lists")
    menu_icon = "list-ul"
    list_display = ("name", "subscribed_count", "created_at")
    search_fields = ("name",)

    def get_queryset(self, request):
        # One query for the page instead of one count per row.
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_subscribed=Count(
                    "subscribers", filter=Q(subscribers__subscribed=True)
                )
            )
        )

    @admin_display(description=_("subscribed"), ordering="n_subscribed")
    def subscribed_count(self, obj: SubscriberList) -> int:
        if hasattr(obj, "n_subscribed"):
            return obj.n_subscribed
        return obj.subscribed_count()


class SignatureAdmin(TextsModelAdmin):
    url_helper_class = URLHelper
    model = Signature
    menu_label = _("Signatures")
    menu_icon = "edit"
    list_display = ("name",)
    search_fields = ("name",)


# --- mailings --------------------------------------------------------------------


class MailingButtonHelper(TextsButtonHelper):
    """The subject opens the mailing's page (progress); edit only drafts; delete
    never while sending."""

    def detail_button(self, pk, classnames_add=None, classnames_exclude=None):
        return {
            "url": self.url_helper.get_action_url("detail", quote(pk)),
            "label": _("Open"),
            "classname": self.finalise_classname(
                ["button-secondary", *(classnames_add or [])], classnames_exclude
            ),
            "title": _("Open this mailing"),
        }

    def get_buttons_for_obj(
        self, obj, exclude=None, classnames_add=None, classnames_exclude=None
    ):
        exclude = list(exclude or [])
        if obj.status != MailingStatus.DRAFT:
            exclude.append("edit")
        if obj.status in (MailingStatus.QUEUED, MailingStatus.SENDING):
            exclude.append("delete")
        buttons = super().get_buttons_for_obj(
            obj, exclude, classnames_add, classnames_exclude
        )
        return [
            self.detail_button(obj.pk, classnames_add, classnames_exclude),
            *buttons,
        ]

    def get_primary_button(self, obj):
        return self.detail_button(obj.pk)


class MailingCreateView(TextsCreateView):
    """The compose form; saving goes through :func:`mailing.create_mailing`.

    ``?webinar=<page id>`` pre-selects the webinar (links from a webinar's pages).
    """

    def get_initial(self):
        initial = super().get_initial()
        webinar = self.request.GET.get("webinar", "")
        if webinar.isascii() and webinar.isdigit() and len(webinar) < 19:
            initial["webinar"] = int(webinar)
        return initial

    def form_valid(self, form):
        data = form.cleaned_data
        self.instance = api.create_mailing(
            data["webinar"],
            subject=data["subject"],
            body_html=data.get("body_html", ""),
            audience=form.audience(),
            signature=data.get("signature"),
            user=self.request.user,
            language=data.get("language", ""),
        )
        messages.success(
            self.request,
            _(
                "Mailing “%(subject)s” saved as a draft. Preview it, send a test, "
                "then send."
            )
            % {"subject": self.instance.subject},
        )
        return redirect(
            self.url_helper.get_action_url("detail", quote(self.instance.pk))
        )


class MailingEditView(TextsEditView):
    """Only drafts can be edited: what was sent stays what was sent."""

    def dispatch(self, request, *args, **kwargs):
        if self.instance.status != MailingStatus.DRAFT:
            messages.warning(
                request, _("A mailing can be edited only before it is sent.")
            )
            return redirect(
                self.url_helper.get_action_url("detail", quote(self.instance.pk))
            )
        return super().dispatch(request, *args, **kwargs)

    def get_success_url(self):
        return self.url_helper.get_action_url("detail", quote(self.instance.pk))


class MailingDeleteView(TextsDeleteView):
    def dispatch(self, request, *args, **kwargs):
        if self.instance.status in (MailingStatus.QUEUED, MailingStatus.SENDING):
            messages.warning(
                request, _("Pause or cancel the mailing before deleting it.")
            )
            return redirect(
                self.url_helper.get_action_url("detail", quote(self.instance.pk))
            )
        return super().dispatch(request, *args, **kwargs)


class MailingAdmin(TextsModelAdmin):
    url_helper_class = URLHelper
    model = Mailing
    menu_label = _("Mailings")
    menu_icon = "mail"
    list_display = (
        "listing_subject",
        "kind_display",
        "webinar",
        "status",
        "progress_display",
        "created_at",
    )
    list_filter = (MailingKindFilter, "status")
    search_fields = ("subject",)
    list_per_page = 50
    list_select_related = ("webinar",)
    button_helper_class = MailingButtonHelper
    create_view_class = MailingCreateView
    edit_view_class = MailingEditView
    delete_view_class = MailingDeleteView
    edit_handler = ObjectList(Mailing.panels, base_form_class=MailingForm)

    def get_queryset(self, request):
        # The progress column from one aggregate query for the page, not one per row.
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_total=Count("recipients"),
                n_sent=Count(
                    "recipients", filter=Q(recipients__status=RecipientStatus.SENT)
                ),
                n_failed=Count(
                    "recipients", filter=Q(recipients__status=RecipientStatus.FAILED)
                ),
            )
        )

    @admin_display(description=_("subject"), ordering="subject")
    def listing_subject(self, obj: Mailing) -> str:
        return obj.display_subject()

    @admin_display(description=_("kind"), ordering="kind")
    def kind_display(self, obj: Mailing) -> str:
        return obj.kind_label()

    @admin_display(description=_("progress"))
    def progress_display(self, obj: Mailing) -> str:
        if obj.status == MailingStatus.DRAFT:
            return ""
        return _("%(sent)s sent, %(failed)s failed, %(total)s in total") % {
            "sent": obj.n_sent,
            "failed": obj.n_failed,
            "total": obj.n_total,
        }

    def get_admin_urls_for_registration(self):
        actions = {
            "detail": mailing_views.MailingDetailView,
            "progress": mailing_views.MailingProgressView,
            "preview": mailing_views.MailingPreviewView,
            "preview_frame": mailing_views.MailingPreviewFrameView,
            "test_send": mailing_views.MailingTestSendView,
            "send": mailing_views.MailingSendView,
            "export": mailing_views.MailingExportView,
            "messages": mailing_views.MailingMessagesView,
        }
        built = {name: _adapted(view, self) for name, view in actions.items()}
        for action in ("pause", "resume", "cancel", "retry"):
            built[action] = _adapted(
                mailing_views.MailingActionView, self, action=action
            )
        return super().get_admin_urls_for_registration() + _extra_urls(self, built)


class InvitationsGroup(ModelAdminGroup):
    """Registers the invitation ModelAdmins (URLs, permissions) and puts their menu
    items into the plugin's "Webinars" group (menu.py) instead of a group of their
    own."""

    menu_label = _("Invitations")
    menu_icon = "mail"
    add_to_admin_menu = False
    items = (MailingAdmin, SubscriberAdmin, SubscriberListAdmin, SignatureAdmin)
    menu_orders = ("mailings", "subscribers", "lists", "signatures")

    def register_with_wagtail(self):
        super().register_with_wagtail()
        for instance, key in zip(
            self.modeladmin_instances, self.menu_orders, strict=True
        ):
            hooks.register(MENU_HOOK, partial(instance.get_menu_item, order=ORDER[key]))


def invitation_buttons(page, user, *, priority: int = 50) -> list[Button]:
    """A "Send invitation" button (the compose form, webinar pre-selected) on
    webinar pages for users who may create mailings."""
    if not issubclass(page.specific_class or object, WebinarPage):
        return []
    if not permissions.can_add_mailing(user):
        return []
    url = URLHelper(Mailing).create_url
    return [
        Button(
            _("Send invitation"),
            url=f"{url}?webinar={page.pk}",
            icon_name="mail",
            priority=priority,
        )
    ]
