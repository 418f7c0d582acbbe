-- :customers customers of tenant :tenant for the sweep benchmark (and the
-- dashboard's), each with one purchase day :since to :since + :spread days
-- ago and up to two activity days. 1 % are due for a lifecycle change today
-- and 1 % for a digital intensity change (their oldest activity leaves the
-- window), as on an ordinary day.
--   psql -v customers=1000000 -v since=80 -v spread=20 -v tenant=bench -f bench/sweep-data.sql
TRUNCATE profile.customers, profile.purchase_days, profile.activity_days, profile.lifecycle_transitions;
INSERT INTO profile.customers (tenant_id, id, persona, attributes, version, created_at, updated_at,
    lifecycle, lifecycle_since, lifecycle_next_change, dii_next_change,
    dii_digital_share, dii_digital_breadth, dii_device_factor, dii_self_service_share)
SELECT :'tenant', gen_random_uuid(), '', '{}', 1, now(), now(),
    'active', now(), CURRENT_DATE + (g % 100), CURRENT_DATE + ((g * 7 + 3) % 100),
    0.5, 0.25, 0.25, 0.5
FROM generate_series(1, :customers) AS g;
-- amount_squares as profile keeps it (amount² / purchases, in units).
INSERT INTO profile.purchase_days (tenant_id, customer_id, day, currency, purchases, amount_micros, amount_squares)
SELECT :'tenant', id, CURRENT_DATE - :since - (random() * :spread)::int, 'EUR', 1, 25000000, 625
FROM profile.customers;
INSERT INTO profile.activity_days (tenant_id, customer_id, day, channel, initiator, kind, touchpoints)
SELECT :'tenant', id, CURRENT_DATE - (random() * 170)::int, 'web', 'pull', 'informative', 3 FROM profile.customers;
INSERT INTO profile.activity_days (tenant_id, customer_id, day, channel, initiator, kind, touchpoints)
SELECT :'tenant', id, CURRENT_DATE - (random() * 170)::int, 'store', 'push', 'transactional', 1 FROM profile.customers
ON CONFLICT DO NOTHING;
VACUUM ANALYZE profile.customers, profile.purchase_days, profile.activity_days;
