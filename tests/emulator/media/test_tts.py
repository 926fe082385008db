"""Speech from espeak-ng: real audio, about as long as the text, in the caller's language."""

from __future__ import annotations

import asyncio

import pytest

from dialtone.emulator.media import audio, tts

SHORT = "Hello."
LONG = "Hello. Thank you for calling. Please leave a message after the beep, then hang up."


def _speak(text: str, language: str = "en-US", voice: str = "man") -> bytes:
    return asyncio.run(tts.synthesize(text, language, voice))


def test_speech_is_real_audio_proportional_to_the_text(espeak):
    short, long = _speak(SHORT), _speak(LONG)
    assert 0.3 < audio.seconds(short) < 2.0
    assert audio.seconds(long) > 3 * audio.seconds(short)
    assert 3.0 < audio.seconds(long) < 10.0
    # Energy well above silence, and most of it voiced.
    assert audio.rms(long) > 5 * audio.SILENCE_THRESHOLD
    assert audio.voiced_seconds(long) > 0.5 * audio.seconds(long)
    assert len(long) % 2 == 0


def test_japanese_speech(espeak):
    pcm = _speak("こんにちは。おでんわ ありがとう ございます。", "ja-JP")
    assert audio.seconds(pcm) > 1.0
    assert audio.voiced_seconds(pcm) > 0.8


def test_empty_text_is_no_audio():  # no espeak-ng needed
    assert _speak("  \n ") == b""


def test_results_are_cached(espeak):
    async def twice() -> tuple[bytes, bytes]:
        return await tts.synthesize(LONG, "en-GB"), await tts.synthesize(LONG, "en-GB")

    first, second = asyncio.run(twice())
    assert first is second


def test_unknown_language_falls_back_to_english(espeak):
    assert audio.voiced_seconds(_speak("Hello there", "xx-YY")) > 0.2


def test_voice_mapping(espeak):
    known = asyncio.run(tts.voices())
    assert {"en-us", "en-gb", "ja", "de", "es", "fr-fr", "cmn"} <= known
    cases = {
        ("en-US", "man"): "en-us",
        ("en-GB", "man"): "en-gb",
        ("ja-JP", "man"): "ja",
        ("de-DE", "man"): "de",
        ("fr-FR", "man"): "fr-fr",
        ("es-ES", "man"): "es",
        ("es-MX", "man"): "es-419",
        ("zh-CN", "man"): "cmn",
        ("pt-BR", "man"): "pt-br",
        ("it-IT", "man"): "it",
        ("nonsense", "man"): "en-us",
        ("en-US", "woman"): "en-us+f3",
        ("en-US", "alice"): "en-us+f3",
        ("ja-JP", "Polly.Mizuki"): "ja+f3",
        ("ja-JP", "Polly.Takumi"): "ja",
        ("en-US", "Polly.Joanna-Neural"): "en-us+f3",
        ("en-US", "Polly.Matthew-Neural"): "en-us",
    }
    for (language, voice), expected in cases.items():
        assert tts.espeak_voice(language, voice, known) == expected, (language, voice)


def test_missing_espeak_is_reported(monkeypatch):
    monkeypatch.setattr(tts, "ESPEAK", "espeak-ng-that-does-not-exist")
    assert not tts.available()
    with pytest.raises(tts.TtsUnavailable, match="apt-get install espeak-ng"):
        _speak("a sentence not in the cache")
