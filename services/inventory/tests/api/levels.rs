//! The figures behind the inventory gauges (docs/operations.md): reservations held, SKUs low and
//! out of stock.
use chrono::{Duration, Utc};
use inventory::storage::{self, Levels};
use testkit::TestDatabase;

#[tokio::test]
async fn levels_count_held_reservations_and_skus_low_or_out_with_their_own_or_the_default_threshold(
) {
    for db in TestDatabase::all().await {
        let (store, _db) = storage::connect(&db.url, 5).await.unwrap();
        let empty = store.levels(5).await.unwrap();
        assert_eq!(
            empty,
            Levels {
                held: 0,
                low: 0,
                out: 0
            },
            "{}",
            db.backend
        );

        // Plenty, at the default threshold, under its own threshold, out, and discontinued.
        store
            .set_on_hand("PLENTY", 50, "count", None)
            .await
            .unwrap();
        store.set_on_hand("EDGE", 5, "count", None).await.unwrap();
        store
            .set_on_hand("OWN", 8, "count", Some(Some(10)))
            .await
            .unwrap();
        store.set_on_hand("NONE", 0, "count", None).await.unwrap();
        store.set_on_hand("GONE", 0, "count", None).await.unwrap();
        let event = platform::events::Event::new(
            "products",
            "product_deleted",
            "GONE",
            serde_json::json!({}),
        );
        store.apply_product(&event, "GONE", true).await.unwrap();
        assert_eq!(
            store.levels(5).await.unwrap(),
            Levels {
                held: 0,
                low: 3,
                out: 1
            },
            "{}",
            db.backend
        );
        // A SKU's own threshold wins over the default, either way.
        assert_eq!(store.levels(0).await.unwrap().low, 2, "{}", db.backend);

        // Reserving 45 of PLENTY leaves 5: low now, and one reservation held until it is sold.
        let lines = vec![("PLENTY".to_owned(), 45)];
        let expires = Utc::now() + Duration::minutes(5);
        store.reserve("r-1", &lines, "h", expires).await.unwrap();
        assert_eq!(
            store.levels(5).await.unwrap(),
            Levels {
                held: 1,
                low: 4,
                out: 1
            },
            "{}",
            db.backend
        );
        store.commit("r-1").await.unwrap();
        assert_eq!(store.levels(5).await.unwrap().held, 0, "{}", db.backend);
    }
}
