"""The dataset review screen: feh-style keys over a folder, with the trainer's view of each image.

Everything slow happens off the event loop: the scan and the pre-flight on
Textual thread workers, pictures on the PreviewLoader's display thread. The
event loop only moves the position, redraws text, and swaps in finished pictures.
"""

from __future__ import annotations

import dataclasses
import os
from functools import partial
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Input, OptionList, Static

from tuitrain.dataset import PreflightReport, read_caption
from tuitrain.dataset.masks import MaskFile
from tuitrain.dataset.references import ReferenceFile
from tuitrain.tui.app_screen import AppScreen
from tuitrain.tui.footer import ScreenFooter
from tuitrain.tui.review.halfcell import halfcell_rows
from tuitrain.tui.review.idle_gc import IdleCollector
from tuitrain.tui.review.loader import PreviewLoader, PreviewRequest, PreviewResult
from tuitrain.tui.review.model import PAGE, ReviewItem, ReviewModel
from tuitrain.tui.review.report import ReportScreen
from tuitrain.tui.review.source import ReviewSource
from tuitrain.tui.review.widgets import SEVERITY_STYLE, CaptionEditor, FileList, ImagePreview, InfoPanel

LOADING_AFTER = 0.15  # seconds before a picture still decoding is replaced by a "decoding" line
REPORT_DEBOUNCE = 0.6  # seconds of quiet after a change before the pre-flight runs again


class FilterInput(Input):
    """The `/` line: filters as you type; Enter keeps the filter, Esc puts the old one back."""

    BINDINGS = [Binding("escape", "cancel", "Cancel filter", id="filter.cancel")]

    class Cancelled(Message):
        pass

    def action_cancel(self) -> None:
        self.post_message(self.Cancelled())


class ReviewScreen(AppScreen[None]):
    """Go through a dataset image by image: cull, restore, caption, and see what the trainer sees."""

    HELP_GROUP = "Review"
    AUTO_FOCUS = ""  # nothing: the screen itself takes the keys; editors get focus only while open
    BINDINGS = [
        Binding("right,n,space", "next", "Next", id="review.next", show=False),
        Binding("left,p,backspace", "previous", "Previous", id="review.previous", show=False),
        Binding("home", "first", "First", id="review.first", show=False),
        Binding("end", "last", "Last", id="review.last", show=False),
        Binding("pagedown", "page(1)", f"Forward {PAGE}", id="review.page_down", show=False),
        Binding("pageup", "page(-1)", f"Back {PAGE}", id="review.page_up", show=False),
        Binding("delete", "cull", "Cull", id="review.cull"),
        Binding("u,ctrl+z", "undo", "Undo", id="review.undo"),
        Binding("c", "edit_caption", "Caption", id="review.caption"),
        Binding("slash", "filter", "Filter", id="review.filter"),
        Binding("b", "toggle_bucket", "Bucket crop", id="review.bucket"),
        Binding("m", "toggle_mask", "Mask", id="review.mask"),
        # Not in the footer (at 80 columns it has no room left); the title bar names it while pairs are shown.
        Binding("e", "toggle_pairs", "Pair view: the reference beside the image", id="review.pairs", show=False),
        Binding("r", "report", "Report", id="review.report"),
        Binding("z", "toggle_zoom", "Fit/1:1", id="review.zoom"),
        Binding("escape", "back", "Back", id="review.back", show=False),
    ]
    NARROW_LABELS = {"toggle_bucket": "Crop", "toggle_zoom": "Zoom"}  # the footer's, below 100 columns

    DEFAULT_CSS = """
    ReviewScreen #titlebar { height: 1; background: $panel; color: $foreground; padding: 0 1; }
    ReviewScreen #body { height: 1fr; }
    ReviewScreen #preview { width: 1fr; border: round $primary 50%; }
    ReviewScreen #reference { width: 1fr; border: round $primary 50%; display: none; }
    ReviewScreen.pairs #reference { display: block; }
    ReviewScreen.pairs #side { width: 34%; min-width: 26; }
    ReviewScreen #side { width: 40%; min-width: 30; max-width: 60; }
    ReviewScreen #info { border: round $primary 50%; padding: 0 1; }
    ReviewScreen #files { height: 1fr; min-height: 3; border: round $primary 50%; }
    ReviewScreen #filter { dock: bottom; display: none; margin-bottom: 1; }
    ReviewScreen #next { height: 1; padding: 0 1; color: $text-muted; }
    ReviewScreen #filter.shown { display: block; }
    """

    class PreviewReady(Message):
        def __init__(self, result: PreviewResult) -> None:
            super().__init__()
            self.result = result

    class Scanned(Message):
        pass

    class ReportDone(Message):
        def __init__(
            self,
            generation: int,
            report: PreflightReport | None,
            error: str | None = None,
            masks: dict[Path, MaskFile | None] | None = None,
            references: dict[Path, ReferenceFile | None] | None = None,
        ) -> None:
            super().__init__()
            self.generation = generation
            self.report = report
            self.error = error
            self.masks = masks
            self.references = references

    def __init__(self, source: ReviewSource, protocol: str, *, cache_dir: Path | None = None) -> None:
        super().__init__()
        self.source = source
        self.protocol = protocol
        self.model = ReviewModel(source, cache_dir=cache_dir)
        self.actual_size = False
        self.show_bucket = False
        self.show_mask = False
        self.show_pairs = self.model.has_references  # an editing model's data: each image beside its reference
        self.ready = False
        self._loader: PreviewLoader | None = None
        self._token = 0
        self._direction = 1
        self._loading_timer: Timer | None = None
        self._waiting_for: PreviewRequest | None = None
        self._report_timer: Timer | None = None
        self._report_running = False
        self._report_again = False
        self._open_report_when_ready = False
        self._report_seen = False  # the next step moves on from "r checks the set" once it is done
        self._previous_query = ""
        self.last_result: PreviewResult | None = None
        self._collector = IdleCollector(self)

    # --- layout ----------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="titlebar")
        with Horizontal(id="body"):
            yield ImagePreview(self.protocol, id="reference", message_id="reference-message")  # left, pair view only
            yield ImagePreview(self.protocol, id="preview")
            with Vertical(id="side"):
                yield InfoPanel(id="info")
                yield FileList(id="files")
        yield FilterInput(
            id="filter", placeholder="caption or file name words, or is:small is:caption is:duplicate is:unreadable is:mask is:flagged"
        )
        yield Static(id="next")
        yield ScreenFooter()

    def on_mount(self) -> None:
        self.set_class(self.show_pairs, "pairs")
        self._collector.start()
        self._loading_timer = self.set_interval(LOADING_AFTER, self._show_loading, pause=True)
        render = None
        if self.protocol == "halfcell":
            render = partial(halfcell_rows, truecolor=self.app.console.color_system == "truecolor")
        self._loader = PreviewLoader(lambda result: self.post_message(self.PreviewReady(result)), render=render)
        self.query_one("#preview", ImagePreview).border_title = "scanning..."
        self.query_one("#titlebar", Static).update(f"[b]{escape(self.source.title)}[/b]  scanning...")
        self._scan()

    def on_unmount(self) -> None:
        self._collector.stop()
        if self._loader is not None:
            self._loader.close()

    @work(thread=True, exclusive=True, group="scan")
    def _scan(self) -> None:
        self.model.load()
        self.post_message(self.Scanned())

    def on_review_screen_scanned(self, _message: Scanned) -> None:
        self.ready = True
        for problem in self.model.problems:
            self.notify(problem, severity="error", timeout=10)
        self._rebuild_list()
        self._show_current()
        self._update_next()
        self._start_report(full_check=False)

    # --- drawing ---------------------------------------------------------------

    def _show_current(self) -> None:
        """Redraw everything that depends on the position, then ask for the picture."""
        self._update_titlebar()
        self._update_info()
        files = self.query_one("#files", FileList)
        if self.model.visible and files.highlighted != self.model.position:
            files.highlighted = self.model.position
        self._request_picture()

    def _update_titlebar(self) -> None:
        model = self.model
        parts = [f"[b]{escape(self.source.title)}[/b]"]
        if model.visible:
            count = f"{model.position + 1}/{len(model.visible)}"
            if model.query:
                count += f" of {len(model.items)}"
            parts.append(count)
        else:
            parts.append(f"0/0 of {len(model.items)}" if model.query else "no images")
        parts.append(f"{model.culled} culled")
        if model.query:
            parts.append(f"filter: [$accent]{escape(model.query)}[/]")
        if self.show_bucket:
            parts.append("[$accent]bucket crop[/]")
        if self.show_mask:
            parts.append("[$accent]mask[/]")
        if self.actual_size:
            parts.append("[$accent]1:1[/]")
        if self.model.has_references:  # the pair key is not in the footer: say it here
            parts.append("[$accent]pairs[/] (e hides)" if self.show_pairs else "e shows pairs")
        self.query_one("#titlebar", Static).update("  ·  ".join(parts))
        files = self.query_one("#files", FileList)
        files.border_title = f"files {len(model.visible)}"
        files.border_subtitle = f"{model.culled} culled"

    def next_step(self) -> str:
        """The next step, until it is done (issue 23: the home screen had one, the review did not):
        go through the images and check the set, then fix what the check lists, then train."""
        if not self.ready:
            return ""
        report = self.model.report
        if not self._report_seen:
            return "[b]Next:[/b] → next · Delete culls · c captions · then [b]r[/b] checks the whole set"
        if report is not None and self.model.report_is_current and not report.can_train:
            return "[b]Next:[/b] fix what [b]r[/b] lists: the set cannot train yet"
        if self.source.config is not None:
            return f"[b]Next:[/b] [b]esc[/b] back to the runs, then [b]t[/b] trains {escape(self.source.title)}"
        folders = [str(concept.path) for concept in self.source.concepts]
        folder = os.path.commonpath(folders) if folders else "DIR"
        return f"[b]Next:[/b] make it a run: tuitrain new NAME --data {escape(folder)}"

    def _update_next(self) -> None:
        self.query_one("#next", Static).update(self.next_step())

    def _show_report(self, report: PreflightReport) -> None:
        self._report_seen = True
        self._update_next()
        self.app.push_screen(ReportScreen(report))

    def _update_info(self) -> None:
        item = self.model.current
        panel = self.query_one("#info", InfoPanel)
        if item is None:
            panel.show("[$text-muted]nothing to show[/]", "")
            return
        lines = [f"[b]{escape(item.name)}[/b]"]
        known = self.model.known_mask(item)
        mask = self.model.mask(item)  # one stat (and a header for a mask): fresh for the image shown
        if mask != known:  # its row's mark follows a mask added, fixed or broken since the last report
            self.query_one("#files", FileList).replace_row(self.model.position, item, self.model.flags(item))
        if len(self.source.concepts) > 1:
            role = "" if item.concept.role == "train" else f" ({item.concept.role})"  # reg / class images
            lines.append(f"concept {escape(item.concept.display_name)} x{item.concept.effective_repeats}{role}")
        info = item.info
        if info is not None:
            lines.append(f"{info.width}x{info.height} px  {_human_bytes(info.file_size)}  {info.format}")
            assignment = self.model.assignment(item)
            if assignment is not None:
                left, top, right, bottom = assignment.crop_box
                lines.append(f"bucket {assignment.bucket[0]}x{assignment.bucket[1]}")
                lines.append(f"crop {left},{top} - {right},{bottom}")
            if mask is None:
                lines.append("[$text-muted]no mask[/]")
            else:
                lines.append(f"mask {escape(mask.path.name)}" + (" [$text-muted](unusable)[/]" if mask.problem else ""))
            if item.concept.references is not None:
                lines.append(self._reference_line(item))
        for flag in self.model.flags(item):
            lines.append(f"[{SEVERITY_STYLE[flag.severity]}]{escape(flag.text)}[/]")
        if item.concept.caption != "per-image":
            caption = f"[$text-muted]caption ({item.concept.caption}):[/] {escape(item.caption or '')}"
        elif item.caption:
            caption = f"[$text-muted]caption:[/] {escape(item.caption)}"
        else:
            caption = "[$text-muted]caption: (none; c to write one)[/]"
        panel.show("\n".join(lines), caption)

    def _reference_line(self, item: ReviewItem) -> str:
        """The info panel's line about the pair, the reference looked up now (it may have been added since);
        the file list's row follows a change."""
        known = self.model.known_reference(item)
        found = self.model.reference(item)
        if found != known:
            self.query_one("#files", FileList).replace_row(self.model.position, item, self.model.flags(item))
        if found is None:
            return "[$error]no reference[/]"
        size = f" {found.size[0]}x{found.size[1]}" if found.size is not None else ""
        return f"reference {escape(found.path.name)}{size}" + (" [$error](unusable)[/]" if found.problem else "")

    def _rebuild_list(self) -> None:
        rows = [(item, self.model.flags(item)) for item in self.model.visible]
        self.query_one("#files", FileList).set_items(rows, self.model.position)

    def _request_picture(self) -> None:
        preview = self.query_one("#preview", ImagePreview)
        item = self.model.current
        self._label_reference(item)
        if item is None:
            preview.border_title = ""
            preview.show_message("No image matches the filter." if self.model.query else "No images here.")
            return
        preview.border_title = escape(item.name)
        mode = "1:1" if self.actual_size else "fit"
        preview.border_subtitle = mode + (" · bucket crop" if self.show_bucket else "") + self._mask_note(item)
        if self._pairs_shown():  # the pair view names both sides: "reference: a.jpg" | "target: a.png"
            preview.border_title = f"target: {escape(item.name)}"
            if item.info is not None:
                preview.border_subtitle = f"{item.info.width}x{item.info.height} · {preview.border_subtitle}"
        if item.info is None:
            preview.show_message(f"cannot show this file:\n{escape(item.problem or '')}")
            return
        box = preview.box
        request = dataclasses.replace(self._request_for(item, box, self._token + 1), neighbours=self._neighbours(box))
        if request.key == preview.shown_key:
            return
        self._token = request.token
        assert self._loader is not None
        ready = self._loader.want(request)
        if ready is not None:  # prepared ahead: drawn in the same frame as the text
            self._display(ready)
        else:
            self._waiting_for = request
            if self._loading_timer is not None:
                self._loading_timer.reset()  # one timer for all requests: a held key makes no new ones

    def _label_reference(self, item: ReviewItem | None) -> None:
        """The pair view's left side: the reference's name and size, and a marker when it is missing (the
        image is then left out of training), of another shape (likewise) or of another size (resized)."""
        if not self._pairs_shown():
            return
        pane = self.query_one("#reference", ImagePreview)
        pane.border_title, pane.border_subtitle = "reference", ""
        if item is None or item.info is None:
            pane.show_message("")
            return
        folder = item.concept.references
        if folder is None:  # another concept of the run (regularisation images, say) pairs nothing
            pane.show_message(f"[$text-muted]concept {escape(item.concept.display_name)} has no references[/]")
            return
        found = self.model.known_reference(item)
        if found is None:
            pane.border_title = "[$error]reference: ✗ MISSING[/]"
            pane.show_message(f"[$error]✗ no reference image[/]\n{escape(item.info.path.stem)}.* is not in "
                              f"{escape(folder.name)}/\n\nthis image is left out of training")
            return
        pane.border_title = f"reference: {escape(found.path.name)}"
        if found.size is None:
            pane.border_subtitle = "[$error]✗ unreadable[/]"
            return
        width, height = found.size
        if found.problem:
            pane.border_subtitle = f"[$error]{width}x{height} ✗ other shape[/]"  # the info panel: not trained
        elif found.size != item.info.size:
            pane.border_subtitle = f"[$warning]{width}x{height} ≠ target[/]"  # the info panel: resized, by how much
        else:
            pane.border_subtitle = f"{width}x{height}"

    def _mask_note(self, item: ReviewItem) -> str:
        """What the overlay shows for this image, for the picture's frame."""
        if not self.show_mask or item.info is None:
            return ""
        mask = self.model.known_mask(item)
        if mask is None:
            return " · no mask file"
        return " · mask unusable" if mask.problem else " · mask"

    def _request_for(self, item: ReviewItem, box: tuple[int, int], token: int) -> PreviewRequest:
        assignment = self.model.assignment(item) if self.show_bucket else None
        known = self.model.known_mask(item)
        usable = self.show_mask and not (known is not None and known.problem)  # a bad mask is not drawn
        reference = self.model.known_reference(item) if self._pairs_shown() else None  # no I/O: as last looked up
        return PreviewRequest(
            token=token,
            path=item.path,
            box=box,
            actual_size=self.actual_size,
            crop_box=assignment.crop_box if assignment is not None else None,
            original_size=item.info.size if item.info is not None else None,
            mask=self.model.mask_path(item) if usable else None,
            reference=reference.path if reference is not None else None,
            reference_box=self.query_one("#reference", ImagePreview).box if reference is not None else None,
        )

    def _neighbours(self, box: tuple[int, int]) -> tuple[PreviewRequest, ...]:
        """The pictures to prepare ahead (none at 1:1, where each is a full decode)."""
        if self.actual_size:
            return ()
        return tuple(self._request_for(other, box, 0) for other in self.model.neighbours(self._direction) if other.info)

    def _pairs_shown(self) -> bool:
        return self.show_pairs and self.model.has_references

    def _show_loading(self) -> None:
        """The picture is still decoding: say so rather than keep showing the previous one."""
        if self._loading_timer is not None:
            self._loading_timer.pause()
        request, self._waiting_for = self._waiting_for, None
        if request is not None and request.token == self._token:
            self.query_one("#preview", ImagePreview).show_message(f"decoding {escape(request.path.name)}...")
            if request.reference is not None:
                self.query_one("#reference", ImagePreview).show_message(f"decoding {escape(request.reference.name)}...")

    def on_review_screen_preview_ready(self, message: PreviewReady) -> None:
        result = message.result
        if result.request.token != self._token:
            return  # the user has moved on
        self._display(result)

    def _display(self, result: PreviewResult) -> None:
        self._waiting_for = None
        preview = self.query_one("#preview", ImagePreview)
        if result.image is None:
            preview.show_message(f"cannot show this image:\n{escape(result.error or '')}")
        else:
            rows = result.payload if isinstance(result.payload, list) else None
            request = result.request
            preview.show_image(result.image, actual_size=request.actual_size, key=request.key, rows=rows)
        reference = result.reference
        if reference is not None:
            pane = self.query_one("#reference", ImagePreview)
            if reference.image is None:
                pane.show_message(f"[$error]cannot show the reference:[/]\n{escape(reference.error or '')}")
            else:
                rows = reference.payload if isinstance(reference.payload, list) else None
                pane.show_image(reference.image, actual_size=result.request.actual_size, key=result.request.key,
                                rows=rows)
        self.last_result = result
        if self._loader is not None:
            self.call_after_refresh(self._loader.resume)  # neighbours once this frame is out
        self._collector.poke()

    def on_resize(self) -> None:
        if self.ready:
            self.call_after_refresh(self._request_picture)

    # --- moving ------------------------------------------------------------------

    def _go(self, position: int, direction: int) -> None:
        if self._busy():
            return
        self._direction = direction
        if self.model.go(position):
            self._show_current()

    def _busy(self) -> bool:
        return not self.ready or self.query_one("#info", InfoPanel).editing

    def action_next(self) -> None:
        self._go(self.model.position + 1, 1)

    def action_previous(self) -> None:
        self._go(self.model.position - 1, -1)

    def action_first(self) -> None:
        self._go(0, 1)

    def action_last(self) -> None:
        self._go(len(self.model.visible) - 1, -1)

    def action_page(self, pages: int) -> None:
        self._go(self.model.position + pages * PAGE, 1 if pages > 0 else -1)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._go(event.option_index, 1 if event.option_index >= self.model.position else -1)

    # --- changing the folder ---------------------------------------------------------

    def action_cull(self) -> None:
        if self._busy() or self.model.current is None:
            return
        name = self.model.current.name
        position = self.model.position
        reference = self.model.known_reference(self.model.current)  # never moved: another image may pair with it
        try:
            self.model.cull_current()
        except OSError as error:
            self.notify(f"Could not cull {name}: {error}", severity="error", timeout=10)
            return
        self.query_one("#files", FileList).remove_option_at_index(position)
        self._show_current()
        kept = f"; its reference {reference.path.name} stays" if reference is not None else ""
        self.notify(f"Culled {name} to the trash (u restores it){kept}", timeout=3)
        self._schedule_report()

    def action_undo(self) -> None:
        if self._busy():
            return
        try:
            done = self.model.undo()
        except OSError as error:
            self.notify(f"Could not restore: {error}", severity="error", timeout=10)
            return
        if done is None:
            self.notify("Nothing to undo: the trash is empty", timeout=3)
            return
        entry, shown = done
        name = Path(entry.restored_to[0]).name if entry.restored_to else entry.image.name
        self._rebuild_list()
        self._show_current()
        suffix = "" if shown else " (hidden by the filter)"
        self.notify(f"Restored {name}{suffix}", timeout=3)
        self._schedule_report()

    def action_edit_caption(self) -> None:
        if self._busy():
            return
        item = self.model.current
        if item is None:
            self.notify("No image to caption here", severity="warning")
            return
        if item.concept.caption != "per-image":
            self.notify(f"This concept's captions come from its {item.concept.caption} setting, not files")
            return
        text = read_caption(item.path, item.concept.caption_extension) or ""
        self.query_one("#info", InfoPanel).start_editing(text.rstrip("\n"))

    def on_caption_editor_saved(self, message: CaptionEditor.Saved) -> None:
        message.stop()
        try:
            path = self.model.save_caption(message.text)
        except OSError as error:
            self.notify(f"Caption not saved: {error}", severity="error", timeout=10)
            return
        self._end_editing()
        if path is not None:
            self.notify(f"Saved {path.name}", timeout=2)
            item = self.model.current
            if item is not None:
                self.query_one("#files", FileList).replace_row(self.model.position, item, self.model.flags(item))
        self._update_info()
        self._schedule_report()

    def on_caption_editor_cancelled(self, message: CaptionEditor.Cancelled) -> None:
        message.stop()
        self._end_editing()

    def _end_editing(self) -> None:
        self.query_one("#info", InfoPanel).stop_editing()
        self.set_focus(None)

    # --- filter --------------------------------------------------------------------

    def action_filter(self) -> None:
        if self._busy():
            return
        field = self.query_one("#filter", FilterInput)
        field.border_title = "filter: Enter keeps it, Esc puts the old one back"
        self._previous_query = self.model.query
        field.value = self.model.query
        field.add_class("shown")
        field.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter" and event.input.has_class("shown"):
            self._apply_query(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            self._apply_query(event.value)
            self._close_filter()

    def on_filter_input_cancelled(self, _message: FilterInput.Cancelled) -> None:
        self._apply_query(self._previous_query)
        self._close_filter()

    def _apply_query(self, query: str) -> None:
        if query.strip() == self.model.query:
            return
        self.model.set_query(query)
        self._rebuild_list()
        self._show_current()

    def _close_filter(self) -> None:
        self.query_one("#filter", FilterInput).remove_class("shown")
        self.set_focus(None)

    # --- views -----------------------------------------------------------------------

    def action_toggle_bucket(self) -> None:
        if self._busy():
            return
        self.show_bucket = not self.show_bucket
        self._show_current()

    def action_toggle_mask(self) -> None:
        """Show the mask over the picture: what it leaves out (black or transparent) is dimmed and tinted."""
        if self._busy():
            return
        self.show_mask = not self.show_mask
        self._show_current()

    def action_toggle_pairs(self) -> None:
        """Show or hide the reference beside the image (sets whose concepts have references only)."""
        if self._busy():
            return
        if not self.model.has_references:
            self.notify("No reference images here: pairs are an editing model's data (a concept's references "
                        "folder, or tuitrain cull DIR --references REFS)", timeout=5)
            return
        self.show_pairs = not self.show_pairs
        self.set_class(self.show_pairs, "pairs")
        if not self.show_pairs:
            self.query_one("#reference", ImagePreview).show_message("")
        self._update_titlebar()
        self._update_info()
        self.call_after_refresh(self._request_picture)  # the panes' new widths first: the pictures fit those

    def help_notes(self) -> list[str]:
        """The `?` overlay's notes: what Delete does to an edit pair."""
        if not self.model.has_references:
            return []
        return ["Edit pairs: Delete culls the image (with its caption and mask) to the trash, where u restores it; "
                "its reference stays in the references folder, untouched (another image may pair with it). "
                "e shows or hides the reference beside the image."]

    def action_toggle_zoom(self) -> None:
        if self._busy():
            return
        self.actual_size = not self.actual_size
        self._show_current()

    def action_back(self) -> None:
        if self.app.screen_stack[0] is not self:  # opened from the runs; `cull` opens on the review itself
            self.app.pop_screen()

    # --- pre-flight report -------------------------------------------------------------

    def action_report(self) -> None:
        if not self.ready:
            return
        report = self.model.report
        if self.model.report_is_current and report is not None and report.settings.get("full_check"):
            self._show_report(report)
            return
        self._open_report_when_ready = True
        self.notify("Checking every image; the report opens when it is ready", timeout=3)
        if not self._report_running:
            self._start_report(full_check=True)

    def _schedule_report(self) -> None:
        if self._report_timer is not None:
            self._report_timer.stop()
        self._report_timer = self.set_timer(REPORT_DEBOUNCE, partial(self._start_report, full_check=True))

    def _start_report(self, full_check: bool = True) -> None:
        if self._report_running:
            self._report_again = True
            return
        self._report_running = True
        self._compute_report(full_check)

    @work(thread=True, group="report")
    def _compute_report(self, full_check: bool) -> None:
        try:
            generation, report, masks, references = self.model.compute_report(full_check=full_check)
        except Exception as error:  # the review goes on without flags from the report
            self.post_message(self.ReportDone(-1, None, f"{type(error).__name__}: {error}"))
            return
        self.post_message(self.ReportDone(generation, report, masks=masks, references=references))

    def on_review_screen_report_done(self, message: ReportDone) -> None:
        self._report_running = False
        if message.report is None:
            self.notify(f"Pre-flight check failed: {message.error}", severity="error", timeout=10)
            return
        full = bool(message.report.settings.get("full_check"))
        applied = self.model.apply_report(message.generation, message.report, message.masks, message.references)
        if applied:
            self._rebuild_list()
            self._update_info()
            self._update_titlebar()
            if self._pairs_shown() and self._loader is not None:  # the neighbours' references are known now
                self._loader.ahead(self._neighbours(self.query_one("#preview", ImagePreview).box))
        if self._report_again or not applied or not full:
            self._report_again = False
            self._start_report(full_check=True)
            return
        if self._open_report_when_ready:
            self._open_report_when_ready = False
            self._show_report(message.report)
        elif self._report_seen:
            self._update_next()  # a cull or a caption changed what the check says


def _human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"
