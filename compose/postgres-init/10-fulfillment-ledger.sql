-- The fulfillment ledger's own database in the compose Postgres service (run once, on a fresh volume).
CREATE DATABASE fulfillment_ledger OWNER airflow;
