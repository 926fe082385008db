"""<Gather>: "action (current document), method (POST), timeout (5), finishOnKey (#), numDigits
(unlimited) … the prompt stops at the first digit. With no input … execution falls through to
the next verb"; `Digits` excludes the finishOnKey digit."""

PROMPT = "Please enter your account number followed by the pound key."


def _gather(hooks, attributes="", after="<Say>no input</Say>"):
    return hooks.on(
        "/voice",
        f'<Response><Gather action="/gathered" {attributes}><Say>{PROMPT}</Say></Gather>{after}</Response>',
    )


def test_digits_up_to_the_finish_key_are_posted_to_the_action(emulator, hooks):
    hooks.on("/gathered", "<Response><Say>thanks</Say></Response>")
    emulator.add_number(VoiceUrl=_gather(hooks))
    call = emulator.call_in()
    emulator.wait_event(call["sid"], "verb", verb="Gather")
    emulator.press(call["sid"], "1234#")
    (request,) = hooks.wait("/gathered")
    assert request.method == "POST"
    assert request.form["Digits"] == "1234"
    assert request.form["FinishedOnKey"] == "#"
    assert request.form["CallStatus"] == "in-progress"
    emulator.wait_status(call["sid"])
    # The prompt stopped at the first digit: it never played to its full length.
    prompt = emulator.events(call["sid"], "audio")[0]
    gathered = emulator.wait_event(call["sid"], "gather_result")
    first_digit = emulator.events(call["sid"], "dtmf")[0]
    assert first_digit["at"] < prompt["at"] + prompt["seconds"]
    assert gathered["digits"] == "1234"


def test_num_digits_ends_the_gather(emulator, hooks):
    hooks.on("/gathered", "<Response/>")
    emulator.add_number(VoiceUrl=_gather(hooks, 'numDigits="2" method="GET"'))
    call = emulator.call_in()
    emulator.wait_event(call["sid"], "verb", verb="Gather")
    emulator.press(call["sid"], "987")
    (request,) = hooks.wait("/gathered")
    assert request.method == "GET"
    assert request.form["Digits"] == "98"
    assert "FinishedOnKey" not in request.form


def test_no_input_falls_through_to_the_next_verb(emulator, hooks):
    emulator.add_number(VoiceUrl=_gather(hooks, 'timeout="3"'))
    call = emulator.call_in()
    emulator.wait_status(call["sid"])
    assert hooks.requests("/gathered") == []
    texts = [a.get("text") for a in emulator.events(call["sid"], "audio")]
    assert texts == [PROMPT, "no input"]
    # The gather waited `timeout` seconds after the prompt.
    prompt, after = emulator.events(call["sid"], "audio")
    assert after["at"] - (prompt["at"] + prompt["seconds"]) >= 3


def test_finish_key_before_any_digit_is_no_input(emulator, hooks):
    emulator.add_number(VoiceUrl=_gather(hooks))
    call = emulator.call_in()
    emulator.wait_event(call["sid"], "verb", verb="Gather")
    emulator.press(call["sid"], "#")
    emulator.wait_status(call["sid"])
    assert hooks.requests("/gathered") == []
    assert emulator.events(call["sid"], "audio")[-1]["text"] == "no input"


def test_action_on_empty_result(emulator, hooks):
    hooks.on("/gathered", "<Response/>")
    emulator.add_number(VoiceUrl=_gather(hooks, 'timeout="1" actionOnEmptyResult="true"'))
    call = emulator.call_in()
    (request,) = hooks.wait("/gathered")
    assert request.form["Digits"] == ""
    emulator.wait_status(call["sid"])


def test_default_action_is_the_current_document(emulator, hooks):
    answers = iter(
        ['<Response><Gather numDigits="1"/></Response>', "<Response><Say>done</Say></Response>"]
    )
    url = hooks.on("/menu", lambda request: next(answers))
    emulator.add_number(VoiceUrl=url)
    call = emulator.call_in()
    emulator.wait_event(call["sid"], "verb", verb="Gather")
    emulator.press(call["sid"], "5")
    first, second = hooks.wait("/menu", 2)
    assert "Digits" not in first.form and second.form["Digits"] == "5"
    emulator.wait_status(call["sid"])
