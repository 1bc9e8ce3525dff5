fn main() {
    let path = std::env::args().nth(1).unwrap();
    let loaded = migrate::spec::load_file(std::path::Path::new(&path)).unwrap();
    let plan = migrate::phases::plan(&loaded.spec).unwrap();
    println!("{}", serde_json::to_string_pretty(&plan.document(None)).unwrap());
}
