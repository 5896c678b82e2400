// Package miniotest starts a real MinIO server on a free loopback port, in a temporary
// directory, for tests that need S3. It fails the test (never skips it) when the minio
// binary is missing: S3 support that is not tested against a real server is not tested.
package miniotest
