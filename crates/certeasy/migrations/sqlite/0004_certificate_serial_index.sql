-- revoke-cert finds the certificate by serial alone; the unique index on
-- (authority, serial) cannot serve that lookup.
CREATE INDEX certificates_by_serial_only ON certificates(serial);
