"""The shared byte-bounded LRU."""

from gql_feed.lru import ByteLRU


def test_evicts_least_recently_used_past_the_byte_bound() -> None:
    cache: ByteLRU[str, str] = ByteLRU(max_bytes=10)
    cache.put("a", "aaaa", 4)
    cache.put("b", "bbbb", 4)
    assert cache.get("a") == "aaaa"  # a is now the most recent
    cache.put("c", "cccc", 4)
    assert cache.get("b") is None
    assert cache.get("a") == "aaaa"
    assert cache.get("c") == "cccc"
    assert cache.size == 8


def test_an_entry_heavier_than_the_bound_is_not_kept() -> None:
    cache: ByteLRU[str, str] = ByteLRU(max_bytes=10)
    cache.put("a", "x", 1)
    cache.put("a", "too big", 11)
    assert cache.get("a") is None
    assert cache.size == 0


def test_replacing_a_key_reweighs_it_and_the_entry_bound_holds() -> None:
    cache: ByteLRU[int, str] = ByteLRU(max_bytes=100, max_entries=2)
    cache.put(1, "one", 50)
    cache.put(1, "uno", 10)
    assert cache.size == 10
    cache.put(2, "two", 10)
    cache.put(3, "three", 10)
    assert len(cache) == 2
    assert 1 not in cache
    assert cache.pop(2) == "two"
    assert cache.size == 10
