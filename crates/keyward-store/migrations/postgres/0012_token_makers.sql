-- Token makers (v12): who made each token (the person or service user whose credential created
-- or rotated it; NULL for tokens made before this version), so the two-person rule can count
-- the maker of a token made for someone else as a person behind it. A change request keeps the
-- human maker of its requesting token, and an approval the human maker of its approving token,
-- when that maker is someone other than the token's owner.
ALTER TABLE tokens ADD COLUMN created_by TEXT;
ALTER TABLE change_requests ADD COLUMN requested_by_maker TEXT;
ALTER TABLE change_request_approvals ADD COLUMN token_maker TEXT;
