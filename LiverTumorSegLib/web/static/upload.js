// Streams the files a user picked to the server, one POST per file (never through the websocket),
// then tells the app which upload batch to open. The server names and places every file itself.
window.ltsUpload = async function (fileList) {
  const files = Array.from(fileList || []);
  if (!files.length) {
    return;
  }
  const batch = Math.random().toString(36).slice(2, 10) + Date.now().toString(36);
  window.trame.trigger("lts_upload_started", [files.length]);
  for (const file of files) {
    const folder = (file.webkitRelativePath || "").split("/").slice(0, -1).join("/");
    const url = `lts/upload/${batch}?name=${encodeURIComponent(file.name)}` +
      `&folder=${encodeURIComponent(folder)}`;
    let response;
    try {
      response = await fetch(url, { method: "POST", body: file });
    } catch (error) {
      window.trame.trigger("lts_upload_failed", [batch, `The upload of ${file.name} failed (${error}); try again.`]);
      return;
    }
    if (!response.ok) {
      window.trame.trigger("lts_upload_failed", [batch, await response.text()]);
      return;
    }
  }
  window.trame.trigger("lts_uploaded", [batch]);
};
