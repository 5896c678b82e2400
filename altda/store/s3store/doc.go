// Package s3store keeps AltDA preimages as objects in an S3-compatible bucket (AWS S3,
// MinIO, ...), one object per commitment under an optional prefix. Several da-server
// replicas can share one bucket: objects are content-addressed, so concurrent writers
// of one commitment write the same bytes.
//
// minio-go's GetObject is lazy (it returns no error for a missing key until the first
// read), which is how other AltDA servers come to answer 500 for data that simply is not
// there; here the first read is done inside Get and "NoSuchKey" becomes store.ErrNotFound.
package s3store
