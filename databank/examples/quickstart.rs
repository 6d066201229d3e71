//! Stores, searches and scans records in an embedded disk bank under `./data` (or the URL in
//! `DATABANK_URL`). Run it twice: the records and the run counter persist.
//!
//! ```text
//! cargo run --example quickstart
//! ```

use databank::{json, Criteria, Error, Schema};
use futures_util::StreamExt;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let url = std::env::var("DATABANK_URL").unwrap_or_else(|_| "disk:data".into());
    let schema = Schema::new().index("person", ["email", "name.last"]);
    let bank = databank::open(&url, schema).await?;

    let runs = bank.incr("meta", "runs").await?;
    println!("run #{runs} against {}", databank::redact(&url));

    for (id, first, last) in [
        ("ada", "Ada", "Lovelace"),
        ("alan", "Alan", "Turing"),
        ("byron", "Anne", "Lovelace"),
    ] {
        let person =
            json!({"email": format!("{id}@example.org"), "name": {"first": first, "last": last}});
        bank.save("person", id, person).await?;
    }

    let lovelaces = bank
        .search("person", &Criteria::new().eq("name.last", "Lovelace"))
        .await?;
    println!("search name.last = Lovelace: {} hit(s)", lovelaces.len());
    for (id, value) in &lovelaces {
        println!("  {id}: {value}");
    }

    let mut all = bank.scan("person");
    let mut ids = Vec::new();
    while let Some(item) = all.next().await {
        ids.push(item?.0);
    }
    ids.sort();
    println!("scan person: {ids:?}");

    bank.append("log", "visits", json!({"run": runs})).await?;
    println!("visit log length: {}", bank.length("log", "visits").await?);
    bank.close().await
}
