-- revoke-cert finds the certificate by serial alone.
CREATE INDEX certificates_by_serial_only ON certificates(serial);
