"""The chat API's logic: validation, the message model and the handlers the Function App delegates to."""
