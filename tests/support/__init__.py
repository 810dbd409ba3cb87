"""What the tests share: fixtures (registered in tests/conftest.py), fakes and helpers.

- database: a database per test, copied from one migrated template per session
- world: settings, services, listeners and the acme.test world the services tests start from
- clock: a clock the test moves by hand
- smtp_sink: receiving MTAs (aiosmtpd in process, Postfix's smtp-sink as a subprocess)
- serve: the `mailmark` console script and `mailmark serve` as subprocesses
- seaweedfs: a real S3 server (SeaweedFS, started by seaweedfs_server, which benches import too)
  for the S3 blob store
- ports: free loopback ports for subprocess servers
- tls: the client side of TLS against the servers' self-signed certificates
"""
