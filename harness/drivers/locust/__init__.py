"""The locust driver: `driver` runs real locust headless and turns its records into samples;
`locustfile` is what locust loads, by path, in every locust process (never import it from the
harness: importing locust monkey-patches the standard library with gevent)."""
