//! The local search index: a tantivy index in memory over the streams and
//! VODs this node has heard of (titles, tags) and the display names of
//! their creators' profiles.
//!
//! What is indexed is what the node already holds (its catalog of
//! announcements, its heard VODs, the profiles in its record store), so
//! the index lives in memory and is rebuilt from those as they arrive; it
//! holds at most [`MAX_DOCS`] documents (the oldest are dropped first).
//!
//! Writes go through [`SearchIndex::upsert`] and [`SearchIndex::set_name`]
//! and become visible at the next [`SearchIndex::commit`] (the node commits
//! every few hundred milliseconds when something changed); queries
//! ([`SearchIndex::search`]) read the last committed state and never wait
//! for a writer.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use tantivy::collector::TopDocs;
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, QueryParser, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Schema, Value, STORED, STRING, TEXT};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

/// Most documents indexed.
pub const MAX_DOCS: usize = 50_000;
/// Most hits a query returns.
pub const MAX_HITS: usize = 200;
/// Longest query text, in bytes.
pub const MAX_QUERY: usize = 256;
/// The writer's memory budget (tantivy's minimum is 15 MB per thread).
const WRITER_BYTES: usize = 20_000_000;

/// Why the index failed (tantivy's errors, as text).
#[derive(Debug, thiserror::Error)]
#[error("search index: {0}")]
pub struct SearchError(String);

fn err(e: impl std::fmt::Display) -> SearchError {
    SearchError(e.to_string())
}

/// What is indexed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DocKind {
    /// A live stream (or one that was live).
    Stream,
    /// A VOD.
    Vod,
}

impl DocKind {
    fn as_str(self) -> &'static str {
        match self {
            DocKind::Stream => "stream",
            DocKind::Vod => "vod",
        }
    }
}

/// One document: a stream or a VOD.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Doc {
    /// Stream or VOD.
    pub kind: DocKind,
    /// Stream id or VOD root CID.
    pub id: String,
    /// Creator key (hex).
    pub creator: String,
    /// Title.
    pub title: String,
    /// Tags.
    pub tags: Vec<String>,
    /// When it was announced (unix ms).
    pub at_ms: u64,
}

/// A query.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchQuery {
    /// Words to find in titles, tags and creator names (any of them;
    /// `"quoted phrases"`, `+must` and `-not` as in tantivy's syntax).
    pub text: Option<String>,
    /// Only documents with this exact tag.
    pub tag: Option<String>,
    /// Most hits (at most [`MAX_HITS`]).
    pub limit: usize,
}

/// One hit, with its relevance score.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchHit {
    /// The document.
    pub doc: Doc,
    /// The creator's display name, when its profile is known.
    pub name: Option<String>,
    /// BM25 relevance (0 for a tag-only query).
    pub score: f32,
}

struct Fields {
    kind: Field,
    id: Field,
    creator: Field,
    title: Field,
    tags: Field,
    tag: Field,
    name: Field,
}

struct Held {
    docs: HashMap<String, Doc>,
    names: HashMap<String, String>,
    dirty: bool,
}

/// The index.
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    held: Mutex<Held>,
    f: Fields,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SearchIndex {
    /// An empty index in memory.
    pub fn new() -> Result<Self, SearchError> {
        let mut b = Schema::builder();
        let f = Fields {
            kind: b.add_text_field("kind", STRING | STORED),
            id: b.add_text_field("id", STRING | STORED),
            creator: b.add_text_field("creator", STRING | STORED),
            title: b.add_text_field("title", TEXT),
            tags: b.add_text_field("tags", TEXT),
            tag: b.add_text_field("tag", STRING),
            name: b.add_text_field("name", TEXT),
        };
        let index = Index::create_in_ram(b.build());
        let writer = index
            .writer_with_num_threads(1, WRITER_BYTES)
            .map_err(err)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(err)?;
        Ok(SearchIndex {
            index,
            reader,
            writer: Mutex::new(writer),
            held: Mutex::new(Held {
                docs: HashMap::new(),
                names: HashMap::new(),
                dirty: false,
            }),
            f,
        })
    }

    fn document(&self, d: &Doc, name: Option<&String>) -> TantivyDocument {
        let mut doc = TantivyDocument::default();
        doc.add_text(self.f.kind, d.kind.as_str());
        doc.add_text(self.f.id, &d.id);
        doc.add_text(self.f.creator, &d.creator);
        doc.add_text(self.f.title, &d.title);
        for t in &d.tags {
            doc.add_text(self.f.tags, t);
            doc.add_text(self.f.tag, t.to_lowercase());
        }
        if let Some(n) = name {
            doc.add_text(self.f.name, n);
        }
        doc
    }

    fn write(&self, writer: &IndexWriter, held: &Held, id: &str) -> Result<(), SearchError> {
        writer.delete_term(Term::from_field_text(self.f.id, id));
        if let Some(d) = held.docs.get(id) {
            writer
                .add_document(self.document(d, held.names.get(&d.creator)))
                .map_err(err)?;
        }
        Ok(())
    }

    /// Adds or replaces a document (visible after the next commit). At
    /// [`MAX_DOCS`], the oldest is dropped.
    pub fn upsert(&self, d: Doc) -> Result<(), SearchError> {
        let mut held = lock(&self.held);
        if held.docs.get(&d.id) == Some(&d) {
            return Ok(());
        }
        let writer = lock(&self.writer);
        if !held.docs.contains_key(&d.id) && held.docs.len() >= MAX_DOCS {
            let oldest = held
                .docs
                .values()
                .min_by_key(|d| d.at_ms)
                .map(|d| d.id.clone());
            if let Some(o) = oldest {
                held.docs.remove(&o);
                self.write(&writer, &held, &o)?;
            }
        }
        let id = d.id.clone();
        held.docs.insert(id.clone(), d);
        self.write(&writer, &held, &id)?;
        held.dirty = true;
        Ok(())
    }

    /// Sets a creator's display name (from its profile): its documents
    /// are found by it.
    pub fn set_name(&self, creator: &str, name: &str) -> Result<(), SearchError> {
        let mut held = lock(&self.held);
        if held.names.get(creator).map(String::as_str) == Some(name) {
            return Ok(());
        }
        if held.names.len() >= MAX_DOCS && !held.names.contains_key(creator) {
            // Names of creators with no document are the first to go.
            let docs: HashSet<String> = held.docs.values().map(|d| d.creator.clone()).collect();
            held.names.retain(|c, _| docs.contains(c));
            if held.names.len() >= MAX_DOCS {
                return Ok(());
            }
        }
        held.names.insert(creator.to_owned(), name.to_owned());
        let ids: Vec<String> = held
            .docs
            .values()
            .filter(|d| d.creator == creator)
            .map(|d| d.id.clone())
            .collect();
        let writer = lock(&self.writer);
        for id in ids {
            self.write(&writer, &held, &id)?;
        }
        held.dirty = true;
        Ok(())
    }

    /// Makes the writes so far visible to queries (if there were any).
    pub fn commit(&self) -> Result<bool, SearchError> {
        let mut held = lock(&self.held);
        if !held.dirty {
            return Ok(false);
        }
        lock(&self.writer).commit().map_err(err)?;
        held.dirty = false;
        drop(held);
        self.reader.reload().map_err(err)?;
        Ok(true)
    }

    /// Documents held.
    pub fn len(&self) -> usize {
        lock(&self.held).docs.len()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs a query over the last committed state: the best BM25 matches
    /// of the text (all documents when there is none), with the tag if one
    /// is given.
    pub fn search(&self, q: &SearchQuery) -> Result<Vec<SearchHit>, SearchError> {
        let mut parts: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        if let Some(text) = q.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            if text.len() > MAX_QUERY {
                return Err(SearchError(format!(
                    "query of {} bytes, more than {MAX_QUERY}",
                    text.len()
                )));
            }
            let mut parser =
                QueryParser::for_index(&self.index, vec![self.f.title, self.f.tags, self.f.name]);
            parser.set_field_boost(self.f.name, 2.0);
            parser.set_field_boost(self.f.tags, 1.5);
            // Lenient: a stray quote or colon in what a user typed is not
            // an error; what parses is searched.
            let (query, _) = parser.parse_query_lenient(text);
            parts.push((Occur::Must, query));
        }
        if let Some(tag) = q.tag.as_deref().filter(|t| !t.is_empty()) {
            let term = Term::from_field_text(self.f.tag, &tag.to_lowercase());
            parts.push((
                Occur::Must,
                Box::new(TermQuery::new(term, IndexRecordOption::Basic)),
            ));
        }
        let query: Box<dyn Query> = if parts.is_empty() {
            Box::new(AllQuery)
        } else {
            Box::new(BooleanQuery::new(parts))
        };
        let searcher = self.reader.searcher();
        let limit = q.limit.clamp(1, MAX_HITS);
        let top = searcher
            .search(&query, &TopDocs::with_limit(limit))
            .map_err(err)?;
        let held = lock(&self.held);
        let mut hits = Vec::with_capacity(top.len());
        for (score, addr) in top {
            let doc: TantivyDocument = searcher.doc(addr).map_err(err)?;
            let Some(id) = doc.get_first(self.f.id).and_then(|v| v.as_str()) else {
                continue;
            };
            // The index may lag the held documents by one commit.
            if let Some(d) = held.docs.get(id) {
                hits.push(SearchHit {
                    doc: d.clone(),
                    name: held.names.get(&d.creator).cloned(),
                    score,
                });
            }
        }
        Ok(hits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str, creator: &str, title: &str, tags: &[&str], at_ms: u64) -> Doc {
        Doc {
            kind: DocKind::Stream,
            id: id.into(),
            creator: creator.into(),
            title: title.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            at_ms,
        }
    }

    fn ids(hits: &[SearchHit]) -> Vec<&str> {
        hits.iter().map(|h| h.doc.id.as_str()).collect()
    }

    #[test]
    fn finds_by_title_tag_and_name_and_ranks_by_relevance() {
        let ix = SearchIndex::new().unwrap();
        ix.upsert(doc(
            "a",
            "c1",
            "Chess openings for beginners",
            &["chess"],
            1,
        ))
        .unwrap();
        ix.upsert(doc(
            "b",
            "c2",
            "Speedrun of an old game",
            &["games", "speedrun"],
            2,
        ))
        .unwrap();
        ix.upsert(doc("c", "c3", "Cooking pasta", &["food"], 3))
            .unwrap();
        ix.set_name("c3", "Chess Chef").unwrap();
        // Nothing is visible before the commit.
        let q = |text: &str| SearchQuery {
            text: Some(text.into()),
            tag: None,
            limit: 10,
        };
        assert!(ix.search(&q("chess")).unwrap().is_empty());
        assert!(ix.commit().unwrap());
        assert!(!ix.commit().unwrap(), "nothing new to commit");
        let hits = ix.search(&q("chess")).unwrap();
        assert_eq!(hits.len(), 2, "{hits:?}");
        assert!(ids(&hits).contains(&"a") && ids(&hits).contains(&"c"));
        assert_eq!(ix.search(&q("speedrun")).unwrap()[0].doc.id, "b");
        // A tag filter alone, case-insensitive.
        let by_tag = ix
            .search(&SearchQuery {
                text: None,
                tag: Some("FOOD".into()),
                limit: 10,
            })
            .unwrap();
        assert_eq!(ids(&by_tag), vec!["c"]);
        assert_eq!(by_tag[0].name.as_deref(), Some("Chess Chef"));
        // Garbage query syntax is searched leniently, never an error.
        ix.search(&q("\"unclosed :: -+ (")).unwrap();
        assert!(ix.search(&q(&"x".repeat(MAX_QUERY + 1))).is_err());
    }

    #[test]
    fn a_replaced_document_is_found_once_and_the_bound_holds() {
        let ix = SearchIndex::new().unwrap();
        ix.upsert(doc("a", "c1", "first title", &[], 1)).unwrap();
        ix.upsert(doc("a", "c1", "second title", &[], 2)).unwrap();
        ix.commit().unwrap();
        let q = SearchQuery {
            text: Some("title".into()),
            tag: None,
            limit: 10,
        };
        let hits = ix.search(&q).unwrap();
        assert_eq!(ids(&hits), vec!["a"]);
        assert_eq!(hits[0].doc.title, "second title");
        assert_eq!(ix.len(), 1);
    }
}
