import pytest

from bot.conversation.engagement import classify
from bot.moderation.trigger import FILE_FIELDS, file_key, files_to_moderate, is_watched, might_be_image

BOT = {"bot_user_id": "UBOT", "bot_id": "BBOT", "allow_bots": False}
PNG = {"id": "F1", "name": "a.png", "mimetype": "image/png", "url_private_download": "https://files/a", "user": "U1"}
PDF = {"id": "F2", "name": "b.pdf", "mimetype": "application/pdf"}
STUB = {"id": "F3", "file_access": "check_file_info"}


@pytest.mark.parametrize(
    ("channel", "configured", "switch", "watched"),
    [
        ("C1", {"C1"}, None, True),  # listed in MODERATION_CHANNELS
        ("C2", {"C1"}, None, False),  # not listed, never switched
        ("C1", {"C1"}, False, False),  # /moderation off beats the environment
        ("C2", {"C1"}, True, True),  # /moderation on for a channel not listed
        ("C2", set(), False, False),
        ("C1", set(), None, False),
    ],
)
def test_which_channels_are_watched(channel, configured, switch, watched):
    assert is_watched(channel, configured, switch) is watched


@pytest.mark.parametrize(
    ("meta", "image"),
    [
        (PNG, True),
        ({"id": "F", "mimetype": "image/heic"}, True),  # the job says it could not be checked
        (PDF, False),
        ({"id": "F", "mimetype": "text/plain", "file_access": "check_file_info"}, False),
        (STUB, True),  # type unknown until files.info
        ({"id": "F"}, False),
        ({**PNG, "mode": "tombstone"}, False),
        ({**PNG, "mode": "hidden_by_limit"}, False),
    ],
)
def test_which_files_might_be_images(meta, image):
    assert might_be_image(meta) is image


def event(**fields):
    base = {"type": "message", "channel": "C1", "channel_type": "channel", "user": "U1", "text": "look", "ts": "5.0"}
    return {**base, **fields}


@pytest.mark.parametrize(
    ("raw", "file_ids"),
    [
        (event(subtype="file_share", files=[PNG, PDF, STUB]), ["F1", "F3"]),  # top level
        (event(subtype="file_share", thread_ts="4.0", files=[PNG]), ["F1"]),  # a thread reply
        (event(type="app_mention", text="<@UBOT> what is this", files=[PNG]), ["F1"]),
        (event(files=[PNG, PNG]), ["F1"]),  # the same file listed twice
        (event(files=[PDF]), []),
        (event(), []),
        (  # an edit that adds a file: every file of the edited message is a candidate
            {
                "type": "message",
                "subtype": "message_changed",
                "channel": "C1",
                "message": {"user": "U1", "ts": "5.0", "text": "now with a picture", "files": [PNG, STUB]},
            },
            ["F1", "F3"],
        ),
        ({"type": "message", "subtype": "message_deleted", "channel": "C1", "deleted_ts": "5.0"}, []),
    ],
)
def test_files_to_moderate(raw, file_ids):
    found = files_to_moderate(classify(raw, **BOT))
    assert [item.file_id for item in found] == file_ids


def test_jobs_carry_the_file_fields_needed_and_nothing_else():
    noisy = {**PNG, "preview": "secret text of the file", "title": "t", "permalink": "https://x/F1"}
    [item] = files_to_moderate(classify(event(files=[noisy]), **BOT))
    assert set(item.meta) <= set(FILE_FIELDS)
    assert item.meta["permalink"] == "https://x/F1" and "preview" not in item.meta


def test_own_messages_are_not_moderated():
    assert files_to_moderate(classify(event(user="UBOT", files=[PNG]), **BOT)) == []


def test_file_keys_are_per_file():
    assert file_key("F1") != file_key("F2")
    assert file_key("F1") == file_key("F1")
