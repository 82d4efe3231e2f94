import threading

from bot.idempotency.store import claim_once


def test_a_key_is_claimed_once_per_team(sessions):
    with sessions.begin() as session:
        assert claim_once(session, "T1", "event:Ev1")
        assert not claim_once(session, "T1", "event:Ev1")
        assert claim_once(session, "T2", "event:Ev1")


def test_concurrent_claims_of_one_key_have_one_winner(sessions):
    wins: list[bool] = []
    barrier = threading.Barrier(6)

    def claim():
        barrier.wait()
        with sessions.begin() as session:
            wins.append(claim_once(session, "T1", "message:C1:1.0"))

    threads = [threading.Thread(target=claim) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(wins) == [False] * 5 + [True]
