-- Groups linked to an identity source (issue 15): `link` is
-- `SOURCE:CLAIM=VALUE` (`github:team=acme/platform`, `dex:groups=ops`); the
-- verified identity proves membership, no member rows are kept for it.
ALTER TABLE org_groups ADD COLUMN link TEXT;

CREATE INDEX org_groups_linked ON org_groups (link) WHERE link IS NOT NULL;
