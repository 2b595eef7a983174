-- A listing of a category sorted by price (the shop's browse) reads its price band in order from
-- this index instead of every product of the category.
CREATE INDEX products_category_price ON products (category, price_amount, id);
DROP INDEX products_category;
