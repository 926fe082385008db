"""The Voice JS SDK's signaling ("PStream" over WSS), as Twilio serves it to `@twilio/voice-sdk`
(reference: voice-sdk-signaling.md)."""
