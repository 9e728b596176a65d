"""Tests for connector.money: ISO 4217 exponents and exact minor-unit conversion."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connector.errors import PayloadError
from connector.money import (
    MAX_MINOR_DIGITS,
    MINOR_UNIT_EXPONENTS,
    exponent,
    format_major,
    from_minor_units,
    to_minor_units,
)

ZERO_DECIMAL = [
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF",
    "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF",
]  # fmt: skip
THREE_DECIMAL = ["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"]
FOUR_DECIMAL = ["CLF", "UYW"]


# --- the table ---------------------------------------------------------------------------------


def test_every_key_is_three_upper_case_letters_and_every_value_a_known_exponent() -> None:
    for code, places in MINOR_UNIT_EXPONENTS.items():
        assert len(code) == 3 and code.isascii() and code.isalpha() and code.isupper(), code
        assert places in {0, 2, 3, 4}, (code, places)


def test_table_is_complete_enough_and_has_the_newer_codes() -> None:
    assert len(MINOR_UNIT_EXPONENTS) >= 150
    for code in ("VES", "VED", "SLE", "ZWG", "XCG", "XAD", "STN", "MRU", "BYN"):
        assert MINOR_UNIT_EXPONENTS[code] == 2, code


@pytest.mark.parametrize("code", ["HRK", "ANG", "BGN", "CUC", "SLL", "ZWL", "VEF", "MRO", "STD"])
def test_withdrawn_codes_are_absent(code: str) -> None:
    assert code not in MINOR_UNIT_EXPONENTS


@pytest.mark.parametrize(
    "code",
    ["XAU", "XAG", "XPT", "XPD", "XDR", "XTS", "XXX", "XBA", "XBB", "XBC", "XBD", "XSU", "XUA"],
)
def test_codes_without_a_minor_unit_are_absent(code: str) -> None:
    with pytest.raises(PayloadError, match="unknown currency code"):
        exponent(code)


def test_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        MINOR_UNIT_EXPONENTS["USD"] = 3  # type: ignore[index]


def test_exponent_groups_match_iso() -> None:
    zero = sorted(c for c, p in MINOR_UNIT_EXPONENTS.items() if p == 0)
    three = sorted(c for c, p in MINOR_UNIT_EXPONENTS.items() if p == 3)
    four = sorted(c for c, p in MINOR_UNIT_EXPONENTS.items() if p == 4)
    assert zero == sorted(ZERO_DECIMAL)
    assert three == sorted(THREE_DECIMAL)
    assert four == sorted(FOUR_DECIMAL)


@pytest.mark.parametrize(
    ("code", "places"),
    [
        *[(c, 0) for c in ZERO_DECIMAL],
        *[(c, 3) for c in THREE_DECIMAL],
        *[(c, 4) for c in FOUR_DECIMAL],
        ("USD", 2), ("EUR", 2), ("GBP", 2), ("HKD", 2), ("CHF", 2), ("CNY", 2),
        ("INR", 2), ("MXN", 2), ("HUF", 2), ("TWD", 2), ("IDR", 2), ("MGA", 2),
    ],
)  # fmt: skip
def test_exponent(code: str, places: int) -> None:
    assert exponent(code) == places


@pytest.mark.parametrize("code", ["XYZ", "gbp", "Gbp", "", "GB", "GBPP", " GBP", "GBP ", "G8P"])
def test_unknown_or_malformed_currency_raises(code: str) -> None:
    with pytest.raises(PayloadError) as info:
        exponent(code)
    assert str(info.value) == f"unknown currency code {code!r}"


@pytest.mark.parametrize("code", ["XYZ", "gbp", ""])
def test_conversions_reject_unknown_currency(code: str) -> None:
    with pytest.raises(PayloadError, match="unknown currency code"):
        to_minor_units("1.00", code)
    with pytest.raises(PayloadError, match="unknown currency code"):
        from_minor_units(100, code)
    with pytest.raises(PayloadError, match="unknown currency code"):
        format_major(100, code)


def test_non_string_currency_raises_payload_error() -> None:
    with pytest.raises(PayloadError, match="unknown currency code None"):
        exponent(None)  # type: ignore[arg-type]


# --- to_minor_units ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        # zero decimals
        ("1500", "JPY", 1500),
        ("1500.00", "JPY", 1500),
        ("0", "JPY", 0),
        ("52000", "KRW", 52000),
        ("52000.000", "KRW", 52000),
        ("990", "CLP", 990),
        # two decimals
        ("186.90", "HKD", 18690),
        ("186.9", "HKD", 18690),
        ("186", "HKD", 18600),
        ("45.00", "GBP", 4500),
        ("0.01", "USD", 1),
        ("19.99", "EUR", 1999),
        ("10.000", "GBP", 1000),
        ("0.10", "USD", 10),
        ("000123.45", "USD", 12345),
        # three decimals
        ("0.125", "KWD", 125),
        ("1.5", "KWD", 1500),
        ("12.345", "BHD", 12345),
        ("7", "TND", 7000),
        ("1.2340", "KWD", 1234),
        # four decimals
        ("1.2345", "CLF", 12345),
        ("38000", "CLF", 380000000),
        ("0.0001", "UYW", 1),
        # signs and whitespace
        ("-3.50", "USD", -350),
        ("-0.125", "KWD", -125),
        ("-1500", "JPY", -1500),
        ("+12.30", "GBP", 1230),
        ("-0", "USD", 0),
        ("-0.00", "USD", 0),
        ("  186.90\n", "HKD", 18690),
        ("\t1500 ", "JPY", 1500),
        # large amounts stay exact
        ("12345678901234.56", "USD", 1234567890123456),
        ("-12345678901234.56", "USD", -1234567890123456),
        ("99999999999999999999.99", "USD", 9999999999999999999999),
        ("123456789012345678901234567.890", "KWD", 123456789012345678901234567890),
    ],
)
def test_to_minor_units_from_strings(amount: str, currency: str, minor: int) -> None:
    result = to_minor_units(amount, currency)
    assert result == minor
    assert type(result) is int


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        (1500, "JPY", 1500),
        (15, "USD", 1500),
        (-2, "GBP", -200),
        (0, "EUR", 0),
        (3, "KWD", 3000),
        (1, "CLF", 10000),
        (Decimal("186.90"), "HKD", 18690),
        (Decimal("1500.00"), "JPY", 1500),
        (Decimal("0.125"), "KWD", 125),
        (Decimal("-3.5"), "USD", -350),
        (Decimal("1E+3"), "JPY", 1000),
        (Decimal("1.5E+1"), "USD", 1500),
        (Decimal("0E-10"), "USD", 0),
        (Decimal("-0"), "USD", 0),
    ],
)
def test_to_minor_units_from_int_and_decimal(amount: int | Decimal, currency: str, minor: int) -> None:
    result = to_minor_units(amount, currency)
    assert result == minor
    assert type(result) is int


@pytest.mark.parametrize(
    "amount",
    [
        "",
        "   ",
        "12,50",
        "1,500.00",
        "1 500",
        "1_500",
        "1e3",
        "1E3",
        "1.5e2",
        "NaN",
        "nan",
        "Infinity",
        "-Infinity",
        "inf",
        "sNaN",
        "abc",
        "1.2.3",
        "12.",
        ".5",
        "-",
        "+",
        "+-1",
        "--1",
        "1-",
        "$12.50",
        "12.50 USD",
        "0x10",
        "\uff11\uff12",  # full-width digits, which Decimal() would accept
        "\u0661\u0662",  # Arabic-Indic digits, likewise
        "12\n34",
        "1500.",
    ],
)
def test_rejects_malformed_strings(amount: str) -> None:
    with pytest.raises(PayloadError) as info:
        to_minor_units(amount, "USD")
    assert repr(amount) in str(info.value)


@pytest.mark.parametrize("amount", [Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity"), Decimal("-Infinity")])
def test_rejects_non_finite_decimals(amount: Decimal) -> None:
    with pytest.raises(PayloadError, match="not a finite number"):
        to_minor_units(amount, "USD")


@pytest.mark.parametrize("amount", [12.5, 0.0, 1500.0, float("nan"), float("inf")])
def test_rejects_float(amount: float) -> None:
    with pytest.raises(PayloadError, match="amounts must be decimal strings, not float"):
        to_minor_units(amount, "USD")  # type: ignore[arg-type]


@pytest.mark.parametrize("amount", [True, False, None, b"12.50", ["12.50"], {"amount": "12.50"}])
def test_rejects_other_types(amount: object) -> None:
    with pytest.raises(PayloadError) as info:
        to_minor_units(amount, "USD")  # type: ignore[arg-type]
    assert repr(amount) in str(info.value)


@pytest.mark.parametrize(
    ("amount", "currency", "places"),
    [
        ("1500.5", "JPY", 0),
        ("1500.01", "JPY", 0),
        ("1500.001", "KRW", 0),
        ("10.001", "GBP", 2),
        ("0.005", "USD", 2),
        ("-0.001", "EUR", 2),
        ("10.0010", "GBP", 2),
        ("1.2345", "KWD", 3),
        ("0.0005", "BHD", 3),
        ("1.23456", "CLF", 4),
        (Decimal("10.001"), "GBP", 2),
        (Decimal("0.5"), "JPY", 0),
    ],
)
def test_rejects_more_decimal_places_than_the_currency_has(amount: str | Decimal, currency: str, places: int) -> None:
    with pytest.raises(PayloadError) as info:
        to_minor_units(amount, currency)
    message = str(info.value)
    assert f"has more decimal places than {currency} allows ({places})" in message
    assert repr(amount) in message


def test_jpy_fraction_message_matches_contract() -> None:
    with pytest.raises(PayloadError, match=r"'1500\.5' has more decimal places than JPY allows \(0\)"):
        to_minor_units("1500.5", "JPY")


def test_extra_zero_decimals_are_not_rounding() -> None:
    assert to_minor_units("1500.0000000000000000000000000000000000", "JPY") == 1500
    assert to_minor_units("0.00000000000000000000000000000000000000", "USD") == 0


def test_rejects_absurdly_large_amounts() -> None:
    biggest = "9" * MAX_MINOR_DIGITS
    assert to_minor_units(biggest, "JPY") == int(biggest)
    with pytest.raises(PayloadError, match="too large"):
        to_minor_units("1" + "0" * MAX_MINOR_DIGITS, "JPY")
    with pytest.raises(PayloadError, match="too large"):
        to_minor_units("9" * (MAX_MINOR_DIGITS - 1), "USD")
    with pytest.raises(PayloadError, match="too large"):
        to_minor_units(Decimal("1E+999999999"), "USD")
    with pytest.raises(PayloadError, match="too large"):
        to_minor_units(10**40, "USD")
    # A zero with a huge exponent is still zero, and cheap.
    assert to_minor_units(Decimal("0E+999999999"), "USD") == 0
    # Far more than 28 digits (Decimal's default precision) and still exact.
    assert to_minor_units("1234567890123456789012345678.90", "USD") == 123456789012345678901234567890


# --- from_minor_units / format_major ---------------------------------------------------------


@pytest.mark.parametrize(
    ("minor", "currency", "major"),
    [
        (18690, "HKD", "186.90"),
        (1500, "JPY", "1500"),
        (125, "KWD", "0.125"),
        (-350, "USD", "-3.50"),
        (0, "USD", "0.00"),
        (0, "JPY", "0"),
        (0, "KWD", "0.000"),
        (1, "USD", "0.01"),
        (1, "CLF", "0.0001"),
        (12345, "CLF", "1.2345"),
        (5, "BHD", "0.005"),
        (4500, "GBP", "45.00"),
        (100, "EUR", "1.00"),
        (1234567890123456, "USD", "12345678901234.56"),
        (123456789012345678901234567890, "USD", "1234567890123456789012345678.90"),
    ],
)
def test_from_minor_units_and_format_major(minor: int, currency: str, major: str) -> None:
    result = from_minor_units(minor, currency)
    assert isinstance(result, Decimal)
    assert result == Decimal(major)
    assert result.as_tuple().exponent == -exponent(currency)  # quantized to the exponent
    assert str(result) == major
    assert format_major(minor, currency) == major


def test_format_major_never_uses_exponent_notation() -> None:
    assert format_major(10**20, "JPY") == "1" + "0" * 20
    assert format_major(1, "CLF") == "0.0001"
    assert format_major(-1, "UYW") == "-0.0001"


@pytest.mark.parametrize("minor", [1.5, True, "100", Decimal(100)])
def test_from_minor_units_rejects_non_int(minor: object) -> None:
    with pytest.raises(TypeError):
        from_minor_units(minor, "USD")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        ("186.90", "HKD"),
        ("186.9", "HKD"),
        ("1500", "JPY"),
        ("1500.00", "JPY"),
        ("0.125", "KWD"),
        ("-3.50", "USD"),
        ("0", "EUR"),
        ("45", "GBP"),
        ("12.345", "BHD"),
        ("7.1", "TND"),
        ("1.2345", "CLF"),
        ("52000", "KRW"),
        ("12345678901234.56", "USD"),
        ("-0.0001", "UYW"),
        ("999999.99", "CHF"),
    ],
)
def test_round_trip(amount: str, currency: str) -> None:
    minor = to_minor_units(amount, currency)
    major = from_minor_units(minor, currency)
    assert major == Decimal(amount)
    assert to_minor_units(major, currency) == minor
    assert to_minor_units(format_major(minor, currency), currency) == minor


@pytest.mark.parametrize("currency", sorted(MINOR_UNIT_EXPONENTS))
def test_round_trip_every_currency(currency: str) -> None:
    for minor in (0, 1, -1, 7, 100, 12345, -987654321):
        assert to_minor_units(format_major(minor, currency), currency) == minor
        assert to_minor_units(from_minor_units(minor, currency), currency) == minor
