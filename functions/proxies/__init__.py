"""FileServer's engine: proxies.json (Functions Proxies schema) routed in-process, to www/, or to external
URLs."""
