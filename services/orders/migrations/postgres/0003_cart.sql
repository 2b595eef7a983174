-- The cart an order was placed from (none for an order of explicit lines): its order_confirmed
-- event names it, and carts checks it out.
ALTER TABLE orders ADD COLUMN cart_id TEXT;
