"""Writes `stocktwits-messages.jsonl`, the sample replay file: 300 message objects in the
StockTwits API v2 shape, written for this project (no copied posts), and 6 malformed lines
that the classifier must dead-letter. Deterministic: the same file every time.

    python samples/generate.py        # rewrites samples/stocktwits-messages.jsonl

Shape, as `GET /api/2/streams/symbol/{SYMBOL}.json` returns each message: `id`, `body`
(HTML-escaped as the API sends it), `created_at` (ISO-8601 UTC with `Z`), `user`, `source`,
`symbols` (objects with `id`, `symbol`, `title`), `entities.sentiment` (null, or
`{"basic": "Bullish"|"Bearish"}`: the author's own tag, on about a third of the posts), and
in later posts the 2026 fields `prices` and `discussion`.
"""

from __future__ import annotations

import html
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

OUT = Path(__file__).resolve().parent / "stocktwits-messages.jsonl"
SEED = 20261204
COUNT = 300
FIRST_ID = 612_400_000
START = datetime(2026, 5, 29, 13, 30, tzinfo=UTC)  # a Friday, US market open

SYMBOLS = {
    "SPY": (7271, "SPDR S&P 500 ETF Trust", 592.4),
    "AAPL": (686, "Apple Inc.", 201.7),
    "TSLA": (8660, "Tesla, Inc.", 346.2),
    "NVDA": (11004, "NVIDIA Corporation", 135.1),
    "AMZN": (864, "Amazon.com, Inc.", 205.0),
    "MSFT": (2735, "Microsoft Corporation", 460.4),
    "QQQ": (6854, "Invesco QQQ Trust", 519.1),
    "AMD": (3054, "Advanced Micro Devices", 110.7),
}
BULLISH = [
    "${a} breaking out of the flag, calls loaded for ${p}",
    "bought more ${a} on this dip, weak hands shaken out",
    "${a} reclaimed the 50 day, next stop ${p}",
    "${a} earnings next week & the whisper number is huge",
    "love this ${a} setup, higher lows all morning",
    "${a} volume coming in, shorts are trapped",
    "added ${a} ${p}c for next Friday, risk/reward too good",
    "${a} held ${p} support perfectly, bulls in control",
    "long ${a} since ${p}, not selling a single share",
    "${a} and ${b} both green on a red tape, strength",
    "${a} squeeze is just getting started",
    "great quarter from ${a}, guidance raised again",
    "${a} bounced right off VWAP, going higher into close",
    "this ${a} pullback is a gift",
    "${a} up {n}% and it still looks cheap",
]
BEARISH = [
    "${a} rejected at ${p} again, puts printing",
    "${a} lower highs all week, heading to ${p}",
    "sold my ${a} calls, this looks heavy",
    "${a} guidance was weak, the market hasn't priced it in",
    "shorting ${a} at ${p}, stop above the high of day",
    "${a} broke the trendline, next leg down",
    "${a} down {n}% and no buyers in sight",
    "bought ${a} ${p}p, this gap fills tomorrow",
    "${a} can't hold green, distribution all day",
    "${a} is way overextended, taking profits and hedging",
    "insiders dumping ${a} again",
    "${a} and ${b} rolling over together, careful",
    "${a} death cross on the daily",
    "dead cat bounce on ${a}, fading it",
    "${a} valuation makes no sense at ${p}",
]
NEUTRAL = [
    "${a} what's the play into the close?",
    "anyone watching ${a} options flow today?",
    "${a} ${b} moving together again",
    "${a} volume light so far",
    "${a} range bound between ${p} and ${q}",
    "what time does ${a} report?",
    "${a} news out, reading it now",
    "${a} chart for the week ahead",
]
USERS = [
    (1876543, "tape_reader", "Tape Reader", "2014-02-11"),
    (3345120, "OptionsOwl", "Owl", "2017-08-30"),
    (5012877, "dividend_dan", "Dan", "2019-01-05"),
    (6410233, "gapfiller", "Gap Filler", "2020-03-16"),
    (7781902, "ThetaGang22", "Theta", "2021-01-27"),
    (8820417, "macro_mara", "Mara", "2022-06-14"),
    (9934411, "swingkid", "swing kid", "2023-10-02"),
    (10221765, "ChartsNotNews", "Charts", "2024-12-09"),
    (10962752, "longtermlisa", "Lisa", "2026-04-30"),
]
SOURCES = [
    {"id": 1149, "title": "StockTwits for iOS", "url": "http://www.stocktwits.com/mobile"},
    {"id": 2269, "title": "StockTwits Web", "url": "https://stocktwits.com"},
    {"id": 1150, "title": "StockTwits for Android", "url": "http://www.stocktwits.com/mobile"},
]
# Lines the classifier must dead-letter, and the reason it gives (stream.decode)
MALFORMED = [
    ('{"id": 612400399, "body": "$SPY cut off mid-wri', "invalid_json"),
    ('{"id": "612400400", "body": "$AAPL id sent as a string"}', "id_not_integer"),
    ('{"id": 612400401, "created_at": "2026-05-29T18:00:00Z"}', "missing_body"),
    ('{"id": 612400402, "body": "   ", "entities": {"sentiment": null}}', "empty_body"),
    ('[{"id": 612400403, "body": "$TSLA wrapped in a list"}]', "not_an_object"),
    ('{"id": 0, "body": "$NVDA id zero"}', "id_out_of_range"),
]


def _fill(template: str, rng: random.Random, a: str, b: str) -> str:
    price = SYMBOLS[a][2] * rng.uniform(0.93, 1.07)
    return (
        template.replace("${a}", f"${a}")
        .replace("${b}", f"${b}")
        .replace("${p}", f"{price:.0f}" if price > 100 else f"{price:.2f}")
        .replace("${q}", f"{price * 1.03:.0f}")
        .replace("{n}", f"{rng.uniform(1.5, 9.5):.1f}")
    )


def message(index: int, rng: random.Random) -> dict[str, object]:
    """One message object in the API's shape."""
    a, b = rng.sample(sorted(SYMBOLS), 2)
    kind = rng.choices(("bullish", "bearish", "neutral"), weights=(44, 36, 20))[0]
    templates = {"bullish": BULLISH, "bearish": BEARISH, "neutral": NEUTRAL}[kind]
    text = _fill(rng.choice(templates), rng, a, b)
    if rng.random() < 0.15:
        text += rng.choice([" 🚀", " 📉", " lol", " imo", " #earnings", " https://stkt.co/x1Yz"])
    tagged = kind != "neutral" and rng.random() < 0.5
    symbols = [a] + ([b] if f"${b}" in text else [])
    user_id, username, name, joined = rng.choice(USERS)
    created = START + timedelta(seconds=index * 78 + rng.randint(0, 60))
    obj: dict[str, object] = {
        "id": FIRST_ID + index,
        "body": html.escape(text, quote=False).replace("'", "&#39;"),
        "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "user": {
            "id": user_id,
            "username": username,
            "name": name,
            "avatar_url": f"https://avatars.stocktwits.com/production/{user_id}/thumb.png",
            "join_date": joined,
            "official": False,
            "identity": "User",
            "classification": [],
            "followers": rng.randint(3, 12_000),
            "following": rng.randint(5, 900),
            "ideas": rng.randint(10, 40_000),
            "like_count": rng.randint(0, 9_000),
        },
        "source": rng.choice(SOURCES),
        "symbols": [
            {
                "id": SYMBOLS[s][0],
                "symbol": s,
                "title": SYMBOLS[s][1],
                "aliases": [],
                "is_following": False,
            }
            for s in symbols
        ],
        "mentioned_users": [],
        "entities": {"sentiment": {"basic": kind.capitalize()} if tagged else None},
    }
    if index >= COUNT // 2:  # the 2026 schema adds these
        obj["discussion"] = False
        obj["prices"] = [
            {
                "id": SYMBOLS[s][0],
                "symbol": s,
                "price": f"{SYMBOLS[s][2] * rng.uniform(0.98, 1.02):.2f}",
            }
            for s in symbols
        ]
    return obj


def main() -> None:
    rng = random.Random(SEED)
    lines = [json.dumps(message(i, rng), ensure_ascii=False) for i in range(COUNT)]
    for position, (line, _reason) in zip(range(40, COUNT, 45), MALFORMED, strict=False):
        lines.insert(position, line)
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{OUT}: {COUNT} messages, {len(MALFORMED)} malformed lines")


if __name__ == "__main__":
    main()
