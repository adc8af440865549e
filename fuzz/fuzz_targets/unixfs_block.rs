//! UnixFS blocks and CAR files from peers and users: the dag-pb and UnixFS
//! decoders, the CAR reader and the file reader over a fuzzed block must
//! never panic or over-allocate, and a node that decodes re-encodes to a
//! node that decodes to the same value.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vilokanam_storage::unixfs::{self, car, CidVersion, PbNode, UnixfsData};

fuzz_target!(|data: &[u8]| {
    if let Ok(node) = PbNode::decode(data) {
        let again = PbNode::decode(&node.encode()).expect("our encoding decodes");
        assert_eq!(again, node);
        if let Some(d) = &node.data {
            let _ = UnixfsData::decode(d);
        }
    }
    let _ = UnixfsData::decode(data);
    let _ = car::read(data);
    // The reader over a DAG whose root is the fuzzed block.
    let cid = unixfs::cid_of(CidVersion::V1, unixfs::DAG_PB, data);
    let mut get = |c: &unixfs::Cid| {
        if *c == cid {
            Ok(data.to_vec())
        } else {
            Err(unixfs::UnixfsError::Missing(c.to_string()))
        }
    };
    let _ = unixfs::read_file(&cid, &mut get);
    let _ = unixfs::resolve(&cid, "a/b", &mut get);
});
