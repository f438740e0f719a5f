import pytest

from tests.utils import make_index, make_user, make_webinar

# Each area keeps its fixtures in its own module; add one line per module here.
pytest_plugins: list[str] = [
    "tests.fixtures_links",
    "tests.fixtures_gate",
    "tests.fixtures_invitations",
    "tests.fixtures_mailing",
    "tests.fixtures_payments",
    "tests.fixtures_moves",
]


@pytest.fixture
def index(db):
    return make_index()


@pytest.fixture
def webinar(index):
    return make_webinar(index, room_password="kawa123")


@pytest.fixture
def superuser(db):
    return make_user("admin", superuser=True)


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client
