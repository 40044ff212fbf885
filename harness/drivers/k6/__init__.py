"""The k6 driver: `driver` runs the real k6 binary and turns its records into samples; `script`
generates the k6 script it runs for each load point."""
