from .links import LinkDevice, LinkStatus, PersonalLink
from .pages import WebinarIndexPage, WebinarPage

__all__ = [
    "LinkDevice",
    "LinkStatus",
    "PersonalLink",
    "WebinarIndexPage",
    "WebinarPage",
]
