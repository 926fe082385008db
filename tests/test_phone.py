import pytest

from dialtone import phone


@pytest.mark.parametrize(
    ("text", "region"),
    [
        ("+81-50-3123-4567", None),
        ("+815031234567", None),
        ("+81 50 3123 4567", None),
        ("050-3123-4567", "JP"),
        ("(050) 3123 4567", "JP"),
        ("+81 (0)50 3123 4567", None),
    ],
)
def test_the_seed_number_in_every_common_format_is_one_e164_number(text, region):
    assert phone.to_e164(text, region) == "+815031234567"


@pytest.mark.parametrize(
    ("text", "region", "reason"),
    [
        ("050-3123-4567", None, "no valid country code"),
        ("hello", "JP", "not a phone number"),
        ("", "JP", "empty"),
        ("+81 50", None, "too short"),
        ("+81 50 3123 4567 8901 2345", None, "too long"),
        ("+999 1234 5678", None, "country code"),
        ("+81 10 1234 5678", None, "no such number range is in use in JP"),
        ("+81-50-3123-4567 ext. 12", None, "extension"),
        ("+81-90-5987-6543</Number><Number>+19005550100", None, "not a phone number"),
    ],
)
def test_invalid_numbers_are_refused_with_the_reason(text, region, reason):
    with pytest.raises(phone.InvalidNumber) as caught:
        phone.to_e164(text, region)
    assert reason in str(caught.value)
    assert caught.value.reason


def test_costly_classes_are_premium_rate_and_shared_cost():
    assert phone.is_costly(phone.parse("+19005550100"))  # US 900: premium rate
    assert phone.number_type(phone.parse("+19005550100")) == "premium-rate"
    assert phone.is_costly(phone.parse("+448449800000"))  # UK 0844: shared cost
    assert not phone.is_costly(phone.parse("+819059876543"))  # JP mobile
    assert phone.number_type(phone.parse("+819059876543")) == "mobile"


def test_region_and_country_code():
    assert phone.region_of("+815031234567") == "JP"
    assert phone.country_code_of("+14155550100") == 1
    assert phone.region_of("+80012345678") is None  # international freephone
