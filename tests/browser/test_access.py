"""A web page in a real browser cannot drive the emulator (access.py): not by a cross-site form
post, not by fetch, not even from a browser that holds this run's console cookie."""

TWILIO_NUMBER = "+815031234567"
PHONE = "+819059876543"


def test_a_foreign_page_cannot_place_calls(browser, live_emulator, web_base, hooks):
    live_emulator.post(
        "IncomingPhoneNumbers.json",
        {"PhoneNumber": TWILIO_NUMBER, "VoiceUrl": hooks.on("/voice", "<Response/>")},
    )
    context = browser.new_context()
    try:
        tab = context.new_page()
        # The developer opened the console: this browser holds the key cookie …
        key = live_emulator.switch.config.console_key
        opened = tab.goto(f"{live_emulator.base_url}/console?key={key}")
        assert opened.status == 200 and opened.url == f"{live_emulator.base_url}/console"
        # … then visits another site (web_base: http://localhost:…, another origin and site).
        tab.goto(web_base + "/")
        with tab.expect_navigation() as navigation:
            tab.evaluate(
                """([action, from, to]) => {
                    const form = document.createElement("form");
                    form.method = "POST";
                    form.action = action;
                    for (const [name, value] of [["From", from], ["To", to]]) {
                        const input = document.createElement("input");
                        input.name = name;
                        input.value = value;
                        form.append(input);
                    }
                    document.body.append(form);
                    form.submit();
                }""",
                [f"{live_emulator.base_url}/emulator/calls", PHONE, TWILIO_NUMBER],
            )
        response = navigation.value
        assert response.status == 403
        assert response.json()["code"] == 20403
        tab.goto(web_base + "/")
        # A no-cors fetch with a "simple" body needs no preflight either.
        status = tab.evaluate(
            """async (url) => {
                const r = await fetch(url, {method: "POST", mode: "no-cors", credentials: "include",
                    headers: {"Content-Type": "text/plain"}, body: "From=x&To=y"});
                return r.type;
            }""",
            f"{live_emulator.base_url}/emulator/calls",
        )
        assert status == "opaque"
    finally:
        context.close()
    assert not [c for c in live_emulator.switch.calls.values() if c.direction == "inbound"]
