//! `rempart tune` on a small labelled corpus: it fits, measures on its held-out part,
//! writes a weights file that a configuration loads (`[scanner] weights_file`), and a
//! bad weights file is an error naming it.

use rempart_tests::gateway::run_rempart;
use rempart_tests::training_message;

#[test]
fn tune_fits_writes_a_weights_file_the_configuration_loads() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus");
    for class in ["ham", "spam"] {
        std::fs::create_dir_all(corpus.join(class)).unwrap();
        for i in 0..60 {
            let mut message = training_message(class, i);
            if class == "spam" {
                // Spam that also trips rules: all-caps subject, HTML only.
                message = message
                    .replace("Subject: Cheap", "Subject: CHEAP PILLS NOW")
                    .replace("\r\n\r\n", "\r\nContent-Type: text/html\r\n\r\n");
            }
            std::fs::write(corpus.join(class).join(format!("{i}.eml")), message).unwrap();
        }
    }
    let weights = dir.path().join("weights.toml");
    let (c, w) = (corpus.display().to_string(), weights.display().to_string());
    let out = run_rempart(&["tune", "--corpus", &c, "--min-learned", "10", "--out", &w], dir.path(), None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    for expected in ["ROC-AUC", "fitted, Bayes trained", "in use, no Bayes", "suggested policy", "BAYES_00"] {
        assert!(stdout.contains(expected), "{expected}:\n{stdout}");
    }
    let file = std::fs::read_to_string(&weights).unwrap();
    assert!(file.contains("[weights]") && file.contains("BAYES_LOGODDS = ") && !file.contains("\n[weights_without_bayes]"), "{file}");

    let config = dir.path().join("rempart.toml");
    std::fs::write(&config, format!("[scanner]\nweights_file = {w:?}\n")).unwrap();
    let out = run_rempart(&["config", "check", config.to_str().unwrap()], dir.path(), None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    std::fs::write(&weights, "[weights]\nNO_SUCH_SYMBOL = 1.0\n").unwrap();
    let out = run_rempart(&["config", "check", config.to_str().unwrap()], dir.path(), None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("NO_SUCH_SYMBOL"), "{stderr}");
    std::fs::write(&weights, "[weights]\nBAYES_99 = \"heavy\"\n").unwrap();
    let out = run_rempart(&["config", "check", config.to_str().unwrap()], dir.path(), None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("weights.toml"), "{stderr}");

    // Not a corpus: a clear error.
    let out = run_rempart(&["tune", "--corpus", dir.path().join("nothing").to_str().unwrap()], dir.path(), None);
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no ham/ and spam/"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
