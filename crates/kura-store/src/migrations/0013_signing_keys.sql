-- Kura 0013: users' signing keys. Released migrations are never edited.

-- The public half of the Ed25519 key the user's password derives, and the salt it was derived
-- with, as their newest password credential published them (NULL before signing keys).
ALTER TABLE users ADD COLUMN signing_key TEXT;
ALTER TABLE users ADD COLUMN key_salt TEXT;
