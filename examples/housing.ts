// The tutorial's full pipeline on the California housing data.
// The training source lands in a later version; until then this prints a note.
console.log("fitstream housing example: coming in a later version (the training source is not built yet)");
