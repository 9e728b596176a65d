"""Money: ISO 4217 minor-unit exponents and exact decimal <-> integer minor-unit conversion.

Webhook sources send amounts as decimal strings in major units (``"186.90"`` HKD); loyalty
platforms mostly want integers in the currency's smallest unit (``18690``). The number of
decimal places is the currency's ISO 4217 *minor unit* (its exponent): 2 for most currencies,
0 for JPY/KRW/CLP/..., 3 for the dinars of Bahrain, Iraq, Jordan, Kuwait, Libya, Tunisia and the
Omani rial, 4 for Chile's CLF and Uruguay's UYW. Multiplying by 100 blindly overstates JPY a
hundredfold and understates KWD tenfold, and floats cannot hold ``0.1`` exactly, so:

* amounts are parsed with :class:`decimal.Decimal`, never ``float`` (floats are rejected);
* the conversion shifts the decimal point by the exponent from :data:`MINOR_UNIT_EXPONENTS`,
  in integer arithmetic, never ``* 100`` and never under a rounding context;
* nothing is ever rounded: an amount with more decimal places than the currency has (other than
  trailing zeros, so ``"1500.00"`` JPY is fine) is a :class:`~connector.errors.PayloadError`.

Source of the table: ISO 4217 "List One" (current currency & funds code list) as published by
the maintenance agency SIX Financial Information on behalf of ISO (``list-one.xml``, the edition
of 2026-01-01, i.e. through Amendment 180), cross-checked against the amendment notices. Codes
whose minor unit ISO gives as "N.A." are left out on purpose, because they have no decimal
subdivision to convert to: the precious metals XAU, XAG, XPT, XPD; the IMF's XDR; the bond-market
units XBA, XBB, XBC, XBD; the SUCRE XSU; the ADB unit of account XUA; the testing code XTS and
"no currency" XXX. Withdrawn codes (ISO "List Three") are not in that table but in
:data:`HISTORIC_MINOR_UNIT_EXPONENTS`: amounts in them still arrive from old bookings and orders
(BGN since 2026-01-01), and :func:`exponent` accepts both. CLDR/Babel digits are deliberately *not*
used: they differ from ISO for several currencies (e.g. IQD, IRR, KPW, LAK, MMK, RSD, SYP, YER).

A code in neither table raises :class:`UnknownCurrency` (a ``PayloadError``); sources test
:func:`known_currency` first and send such an amount's activity without spend, marked, instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType

from connector.errors import PayloadError

__all__ = [
    "HISTORIC_MINOR_UNIT_EXPONENTS",
    "MAX_MINOR_DIGITS",
    "MINOR_UNIT_EXPONENTS",
    "UnknownCurrency",
    "exponent",
    "format_major",
    "from_minor_units",
    "known_currency",
    "to_minor_units",
]

_ISO_4217_LIST_ONE: dict[str, int] = {
    "AED": 2,  # UAE Dirham
    "AFN": 2,  # Afghani
    "ALL": 2,  # Lek
    "AMD": 2,  # Armenian Dram
    # ANG (Netherlands Antillean Guilder) is withdrawn: replaced by XCG on 2025-03-31, legal
    # tender until 2025-06-30 and moved to List Three (Amendment 176). See _ISO_4217_LIST_THREE.
    "AOA": 2,  # Kwanza
    "ARS": 2,  # Argentine Peso
    "AUD": 2,  # Australian Dollar
    "AWG": 2,  # Aruban Florin
    "AZN": 2,  # Azerbaijan Manat
    "BAM": 2,  # Convertible Mark
    "BBD": 2,  # Barbados Dollar
    "BDT": 2,  # Taka
    # BGN (Bulgarian Lev) is withdrawn: Bulgaria adopted the euro on 2026-01-01 and ISO moved BGN
    # to List Three (Amendment 180). New Bulgarian amounts arrive as EUR; see _ISO_4217_LIST_THREE.
    "BHD": 3,  # Bahraini Dinar
    "BIF": 0,  # Burundi Franc
    "BMD": 2,  # Bermudian Dollar
    "BND": 2,  # Brunei Dollar
    "BOB": 2,  # Boliviano
    "BOV": 2,  # Mvdol (fund)
    "BRL": 2,  # Brazilian Real
    "BSD": 2,  # Bahamian Dollar
    "BTN": 2,  # Ngultrum
    "BWP": 2,  # Pula
    "BYN": 2,  # Belarusian Ruble
    "BZD": 2,  # Belize Dollar
    "CAD": 2,  # Canadian Dollar
    "CDF": 2,  # Congolese Franc
    "CHE": 2,  # WIR Euro (fund)
    "CHF": 2,  # Swiss Franc
    "CHW": 2,  # WIR Franc (fund)
    "CLF": 4,  # Unidad de Fomento (fund)
    "CLP": 0,  # Chilean Peso
    "CNY": 2,  # Yuan Renminbi
    "COP": 2,  # Colombian Peso
    "COU": 2,  # Unidad de Valor Real (fund)
    "CRC": 2,  # Costa Rican Colon
    # CUC (Peso Convertible) is withdrawn: Cuba ended it in 2021 and ISO moved it to List Three
    # (Amendment 178).
    "CUP": 2,  # Cuban Peso
    "CVE": 2,  # Cabo Verde Escudo
    "CZK": 2,  # Czech Koruna
    "DJF": 0,  # Djibouti Franc
    "DKK": 2,  # Danish Krone
    "DOP": 2,  # Dominican Peso
    "DZD": 2,  # Algerian Dinar
    "EGP": 2,  # Egyptian Pound
    "ERN": 2,  # Nakfa
    "ETB": 2,  # Ethiopian Birr
    "EUR": 2,  # Euro
    "FJD": 2,  # Fiji Dollar
    "FKP": 2,  # Falkland Islands Pound
    "GBP": 2,  # Pound Sterling
    "GEL": 2,  # Lari
    "GHS": 2,  # Ghana Cedi
    "GIP": 2,  # Gibraltar Pound
    "GMD": 2,  # Dalasi
    "GNF": 0,  # Guinean Franc
    "GTQ": 2,  # Quetzal
    "GYD": 2,  # Guyana Dollar
    "HKD": 2,  # Hong Kong Dollar
    "HNL": 2,  # Lempira
    # HRK (Kuna) is withdrawn: Croatia adopted the euro on 2023-01-01 and ISO moved HRK to
    # List Three.
    "HTG": 2,  # Gourde
    "HUF": 2,  # Forint
    "IDR": 2,  # Rupiah
    "ILS": 2,  # New Israeli Sheqel
    "INR": 2,  # Indian Rupee
    "IQD": 3,  # Iraqi Dinar
    "IRR": 2,  # Iranian Rial
    "ISK": 0,  # Iceland Krona
    "JMD": 2,  # Jamaican Dollar
    "JOD": 3,  # Jordanian Dinar
    "JPY": 0,  # Yen
    "KES": 2,  # Kenyan Shilling
    "KGS": 2,  # Som
    "KHR": 2,  # Riel
    "KMF": 0,  # Comorian Franc
    "KPW": 2,  # North Korean Won
    "KRW": 0,  # Won
    "KWD": 3,  # Kuwaiti Dinar
    "KYD": 2,  # Cayman Islands Dollar
    "KZT": 2,  # Tenge
    "LAK": 2,  # Lao Kip
    "LBP": 2,  # Lebanese Pound
    "LKR": 2,  # Sri Lanka Rupee
    "LRD": 2,  # Liberian Dollar
    "LSL": 2,  # Loti
    "LYD": 3,  # Libyan Dinar
    "MAD": 2,  # Moroccan Dirham
    "MDL": 2,  # Moldovan Leu
    "MGA": 2,  # Malagasy Ariary (ISO says 2 although 1 ariary = 5 iraimbilanja)
    "MKD": 2,  # Denar
    "MMK": 2,  # Kyat
    "MNT": 2,  # Tugrik
    "MOP": 2,  # Pataca
    "MRU": 2,  # Ouguiya
    "MUR": 2,  # Mauritius Rupee
    "MVR": 2,  # Rufiyaa
    "MWK": 2,  # Malawi Kwacha
    "MXN": 2,  # Mexican Peso
    "MXV": 2,  # Mexican Unidad de Inversion (UDI) (fund)
    "MYR": 2,  # Malaysian Ringgit
    "MZN": 2,  # Mozambique Metical
    "NAD": 2,  # Namibia Dollar
    "NGN": 2,  # Naira
    "NIO": 2,  # Cordoba Oro
    "NOK": 2,  # Norwegian Krone
    "NPR": 2,  # Nepalese Rupee
    "NZD": 2,  # New Zealand Dollar
    "OMR": 3,  # Rial Omani
    "PAB": 2,  # Balboa
    "PEN": 2,  # Sol
    "PGK": 2,  # Kina
    "PHP": 2,  # Philippine Peso
    "PKR": 2,  # Pakistan Rupee
    "PLN": 2,  # Zloty
    "PYG": 0,  # Guarani
    "QAR": 2,  # Qatari Rial
    "RON": 2,  # Romanian Leu
    "RSD": 2,  # Serbian Dinar
    "RUB": 2,  # Russian Ruble
    "RWF": 0,  # Rwanda Franc
    "SAR": 2,  # Saudi Riyal
    "SBD": 2,  # Solomon Islands Dollar
    "SCR": 2,  # Seychelles Rupee
    "SDG": 2,  # Sudanese Pound
    "SEK": 2,  # Swedish Krona
    "SGD": 2,  # Singapore Dollar
    "SHP": 2,  # Saint Helena Pound
    "SLE": 2,  # Leone (redenominated 1000:1 from SLL in 2022)
    # SLL (old Leone) is withdrawn: replaced by SLE and moved to List Three.
    "SOS": 2,  # Somali Shilling
    "SRD": 2,  # Surinam Dollar
    "SSP": 2,  # South Sudanese Pound
    "STN": 2,  # Dobra
    "SVC": 2,  # El Salvador Colon (still listed alongside USD)
    "SYP": 2,  # Syrian Pound
    "SZL": 2,  # Lilangeni
    "THB": 2,  # Baht
    "TJS": 2,  # Somoni
    "TMT": 2,  # Turkmenistan New Manat
    "TND": 3,  # Tunisian Dinar
    "TOP": 2,  # Pa'anga
    "TRY": 2,  # Turkish Lira
    "TTD": 2,  # Trinidad and Tobago Dollar
    "TWD": 2,  # New Taiwan Dollar
    "TZS": 2,  # Tanzanian Shilling
    "UAH": 2,  # Hryvnia
    "UGX": 0,  # Uganda Shilling
    "USD": 2,  # US Dollar
    "USN": 2,  # US Dollar (Next day) (fund)
    "UYI": 0,  # Uruguay Peso en Unidades Indexadas (UI) (fund)
    "UYU": 2,  # Peso Uruguayo
    "UYW": 4,  # Unidad Previsional
    "UZS": 2,  # Uzbekistan Sum
    "VED": 2,  # Bolivar Soberano (digital bolivar, 2021)
    "VES": 2,  # Bolivar Soberano (still listed alongside VED)
    "VND": 0,  # Dong
    "VUV": 0,  # Vatu
    "WST": 2,  # Tala
    "XAD": 2,  # Arab Accounting Dinar (Arab Monetary Fund, fund; Amendment 179, 2025)
    "XAF": 0,  # CFA Franc BEAC
    "XCD": 2,  # East Caribbean Dollar
    "XCG": 2,  # Caribbean Guilder (Curacao, Sint Maarten; replaced ANG 2025-03-31)
    "XOF": 0,  # CFA Franc BCEAO
    "XPF": 0,  # CFP Franc
    "YER": 2,  # Yemeni Rial
    "ZAR": 2,  # Rand
    "ZMW": 2,  # Zambian Kwacha
    "ZWG": 2,  # Zimbabwe Gold (Amendment 177, 2024-06-25)
    # ZWL (Zimbabwe Dollar) is withdrawn: replaced by ZWG, moved to List Three on 2024-08-31.
}

MINOR_UNIT_EXPONENTS: Mapping[str, int] = MappingProxyType(_ISO_4217_LIST_ONE)
"""ISO 4217 alphabetic code -> number of decimal places of its minor unit (read-only)."""

# Withdrawn codes, ISO 4217 "List Three" (historic denominations, SIX ``list-three.xml``) and the
# amendment notices that moved them there. List Three records the withdrawal, not the minor unit:
# each exponent is the one the code had in its last List One edition. Only codes withdrawn since
# 2005 are listed (older bookings do not reach a loyalty platform); a withdrawn code that is not
# here is treated like any unknown code (the activity goes without spend).
_ISO_4217_LIST_THREE: dict[str, int] = {
    "ANG": 2,  # Netherlands Antillean Guilder -> XCG, 2025-06-30 (Amendment 176)
    "BGN": 2,  # Bulgarian Lev -> EUR, 2026-01-01 (Amendment 180)
    "BYR": 0,  # Belarusian Ruble -> BYN, 2016-07-01 (redenominated 10,000:1)
    "CSD": 2,  # Serbian Dinar -> RSD, 2006
    "CUC": 2,  # Peso Convertible, ended 2021, withdrawn 2022 (Amendment 178)
    "CYP": 2,  # Cyprus Pound -> EUR, 2008-01-01
    "EEK": 2,  # Kroon -> EUR, 2011-01-01
    "HRK": 2,  # Kuna -> EUR, 2023-01-01
    "LTL": 2,  # Lithuanian Litas -> EUR, 2015-01-01
    "LVL": 2,  # Latvian Lats -> EUR, 2014-01-01
    "MRO": 2,  # Ouguiya -> MRU, 2018-01-01 (ISO gave 2 although 1 ouguiya = 5 khoums)
    "MTL": 2,  # Maltese Lira -> EUR, 2008-01-01
    "SIT": 2,  # Tolar -> EUR, 2007-01-01
    "SKK": 2,  # Slovak Koruna -> EUR, 2009-01-01
    "SLL": 2,  # Leone -> SLE (1000:1), withdrawn 2023
    "STD": 2,  # Dobra -> STN, 2018-01-01 (Amendment 164)
    "USS": 2,  # US Dollar (Same day) (fund), withdrawn 2014
    "VEB": 2,  # Bolivar -> VEF, 2008-01-01
    "VEF": 2,  # Bolivar Fuerte -> VES, 2018 (Amendment 167)
    "ZMK": 2,  # Zambian Kwacha -> ZMW, 2013-01-01
    "ZWL": 2,  # Zimbabwe Dollar -> ZWG, 2024-08-31 (Amendment 177)
    "ZWR": 2,  # Zimbabwe Dollar (third) -> ZWL, 2009
}

HISTORIC_MINOR_UNIT_EXPONENTS: Mapping[str, int] = MappingProxyType(_ISO_4217_LIST_THREE)
"""Withdrawn ISO 4217 code -> the minor-unit exponent it had while current (read-only)."""


class UnknownCurrency(PayloadError):  # noqa: N818 - reads as what it reports, like UnsupportedEvent
    """A currency code in neither ISO 4217 table (current or withdrawn): no exponent to convert with."""

    def __init__(self, currency: object) -> None:
        super().__init__(f"unknown currency code {currency!r}")
        self.currency = currency


MAX_MINOR_DIGITS = 30
"""Largest accepted amount, in digits of minor units (int64 holds 18). Bounds hostile input."""

_CODE = re.compile(r"[A-Z]{3}")
# Optional sign, ASCII digits, optional fraction with at least one digit. No exponent, no
# thousands separators, no underscores (which Decimal() itself would accept), no "NaN"/"Infinity".
_AMOUNT = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")


def exponent(currency: str) -> int:
    """Return the ISO 4217 minor-unit exponent (decimal places) of a currency.

    Args:
        currency: Upper-case three-letter ISO 4217 alphabetic code, e.g. ``"GBP"``. The lookup is
            case-sensitive: ``"gbp"`` is rejected rather than guessed at.

    Returns:
        The number of decimal places: 0, 2, 3 or 4 (a withdrawn code: the places it had).

    Raises:
        UnknownCurrency: The code is malformed or in neither table (a ``PayloadError``).
    """
    if isinstance(currency, str) and _CODE.fullmatch(currency):
        found = MINOR_UNIT_EXPONENTS.get(currency, HISTORIC_MINOR_UNIT_EXPONENTS.get(currency))
        if found is not None:
            return found
    raise UnknownCurrency(currency)


def known_currency(currency: object) -> bool:
    """Whether :func:`exponent` knows ``currency`` (a current or a withdrawn ISO 4217 code)."""
    return isinstance(currency, str) and (currency in MINOR_UNIT_EXPONENTS or currency in HISTORIC_MINOR_UNIT_EXPONENTS)


def to_minor_units(amount: str | int | Decimal, currency: str) -> int:
    """Convert a major-unit amount to integer minor units, exactly.

    ``"186.90"`` HKD -> ``18690``; ``"1500"`` and ``"1500.00"`` JPY -> ``1500``;
    ``"0.125"`` KWD -> ``125``; ``"-3.50"`` USD -> ``-350``. An ``int`` is a whole number of
    major units (``15`` USD -> ``1500``).

    Args:
        amount: A plain decimal string (optional sign, ASCII digits, optional ``.`` fraction;
            surrounding whitespace is ignored), an ``int``, or a finite ``Decimal``.
        currency: Upper-case ISO 4217 code.

    Returns:
        The amount in the currency's minor units.

    Raises:
        PayloadError: The currency is unknown; the amount is a float, a bool, None or another
            type; the string is empty or not a plain decimal (thousands separators, exponent
            notation, ``NaN``, ``Infinity``, ...); the amount has more non-zero decimal places
            than the currency allows; or it exceeds :data:`MAX_MINOR_DIGITS` digits.
    """
    places = exponent(currency)
    if isinstance(amount, float):
        raise PayloadError(f"amounts must be decimal strings, not float: got {amount!r}")
    if isinstance(amount, bool):
        raise PayloadError(f"amount {amount!r} is a boolean, not a decimal amount")
    if isinstance(amount, int):
        value = Decimal(amount)
    elif isinstance(amount, Decimal):
        if not amount.is_finite():
            raise PayloadError(f"amount {amount!r} is not a finite number")
        value = amount
    elif isinstance(amount, str):
        text = amount.strip()
        if not text:
            raise PayloadError(f"amount {amount!r} is empty")
        if not _AMOUNT.fullmatch(text):
            raise PayloadError(f"amount {amount!r} is not a plain decimal number")
        value = Decimal(text)
    else:
        raise PayloadError(f"amount {amount!r} must be a decimal string, not {type(amount).__name__}")
    return _shift(value, places, currency, amount)


def _shift(value: Decimal, places: int, currency: str, shown: object) -> int:
    """Move the decimal point ``places`` to the right in integer arithmetic, refusing to round."""
    sign, digits, dexp = value.as_tuple()
    if not isinstance(dexp, int):  # pragma: no cover - callers pass finite values only
        raise PayloadError(f"amount {shown!r} is not a finite number")
    shift = dexp + places
    if shift < 0:
        # digits[shift:] are below the minor unit; slicing clamps when shift < -len(digits).
        if any(digits[shift:]):
            raise PayloadError(f"amount {shown!r} has more decimal places than {currency} allows ({places})")
        digits = digits[:shift]
        shift = 0
    significant = "".join(map(str, digits)).lstrip("0")
    if not significant:
        return 0
    if len(significant) + shift > MAX_MINOR_DIGITS:
        raise PayloadError(f"amount {shown!r} is too large ({MAX_MINOR_DIGITS} digits at most)")
    minor: int = int(significant) * 10**shift  # shift <= MAX_MINOR_DIGITS here
    return -minor if sign else minor


def from_minor_units(minor: int, currency: str) -> Decimal:
    """Convert integer minor units back to a major-unit ``Decimal`` with the currency's places.

    ``18690`` HKD -> ``Decimal("186.90")``; ``1500`` JPY -> ``Decimal("1500")``;
    ``125`` KWD -> ``Decimal("0.125")``.

    Args:
        minor: Amount in minor units.
        currency: Upper-case ISO 4217 code.

    Returns:
        The exact major-unit amount, quantized to exactly ``exponent(currency)`` decimal places.

    Raises:
        PayloadError: The currency is unknown.
        TypeError: ``minor`` is not an ``int`` (a ``bool`` or ``float`` is a programming error).
    """
    places = exponent(currency)
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise TypeError(f"minor units must be an int, not {type(minor).__name__}")
    # Built from a string, so exact at any size (no context precision or rounding involved).
    return Decimal(f"{minor}E-{places}")


def format_major(minor: int, currency: str) -> str:
    """Format integer minor units as a major-unit decimal string with exactly the currency's places.

    For APIs that want major-unit decimal strings: ``18690`` HKD -> ``"186.90"``,
    ``1500`` JPY -> ``"1500"``, ``125`` KWD -> ``"0.125"``, ``-350`` USD -> ``"-3.50"``.

    Args:
        minor: Amount in minor units.
        currency: Upper-case ISO 4217 code.

    Returns:
        Plain positional notation (never exponent notation), no thousands separators.

    Raises:
        PayloadError: The currency is unknown.
        TypeError: ``minor`` is not an ``int``.
    """
    return format(from_minor_units(minor, currency), "f")
