-- Migration 0004 (issue 20, guessing bounded per login): two more kinds of failure
-- counts, over a day-long window (throttle.py): 'untrusted', the failed checks of a login
-- from clients without a device cookie of it, whatever their addresses (the per-login
-- budget), and 'device', the failed checks sent with one device cookie.
-- depends: 0003.security

ALTER TABLE AuthFailure DROP CONSTRAINT authfailure_kind_check;
ALTER TABLE AuthFailure ADD CONSTRAINT authfailure_kind_check
  CHECK (kind IN ('login', 'address', 'untrusted', 'device'));
