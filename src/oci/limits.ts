/** R2's most parts in one multipart upload: the most an upload can be cut into. */
export const MAX_UPLOAD_PARTS = 10_000;
