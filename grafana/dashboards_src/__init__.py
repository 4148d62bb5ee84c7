"""One module per provisioned dashboard (see grafana/generate.py), plus common.py."""
