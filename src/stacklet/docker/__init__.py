"""The only code that talks to Docker engines and to link proxies."""
