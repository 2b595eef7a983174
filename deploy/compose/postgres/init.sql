-- One database per service (no service reads another's tables); runs once, on an empty volume.
CREATE DATABASE agora_users;
CREATE DATABASE agora_products;
CREATE DATABASE agora_inventory;
CREATE DATABASE agora_orders;
CREATE DATABASE agora_payments;
CREATE DATABASE agora_carts;
