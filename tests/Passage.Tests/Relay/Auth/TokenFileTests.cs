using Passage.Configuration;
using Passage.Relay.Auth;
using Passage.Tests.Configuration;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Relay.Auth;

public sealed class TokenFileTests : IDisposable
{
    private readonly TokenFileFixture _fixture = new();

    public void Dispose() => _fixture.Dispose();

    [Fact]
    public void Loads_tokens_skipping_comments_and_blank_lines_and_trimming()
    {
        _fixture.Write("# operators\n\nalpha\n  beta  \r\n\tgamma==\t\n   # indented comment\n#delta\n");
        using TokenFile file = _fixture.Open();

        Assert.Equal(3, file.Count);
        Assert.True(file.IsValid("alpha"));
        Assert.True(file.IsValid("beta"));
        Assert.True(file.IsValid("gamma=="));
        Assert.False(file.IsValid("delta"));
        Assert.False(file.IsValid("#delta"));
        Assert.False(file.IsValid("# operators"));
        Assert.False(file.IsValid(" beta"));
        Assert.False(file.IsValid(""));
        Assert.Null(file.LastError);
    }

    [Fact]
    public void Valid_and_invalid_tokens_of_every_length()
    {
        _fixture.Write("a\nsixteen-chars-xx\n" + new string('z', 1024) + "\n");
        using TokenFile file = _fixture.Open();

        Assert.True(file.IsValid("a"));
        Assert.True(file.IsValid("sixteen-chars-xx"));
        Assert.True(file.IsValid(new string('z', 1024)));
        Assert.False(file.IsValid("b"));
        Assert.False(file.IsValid("A"));
        Assert.False(file.IsValid("aa"));
        Assert.False(file.IsValid("sixteen-chars-x"));
        Assert.False(file.IsValid("sixteen-chars-xxx"));
        Assert.False(file.IsValid("sixteen-chars-xy"));
        Assert.False(file.IsValid(new string('z', 1023)));
        Assert.False(file.IsValid(new string('z', 1025)));
        Assert.False(file.IsValid(new string('z', 100_000)));
        Assert.False(file.IsValid("sixteen-chars-xé"));
    }

    /// <summary>
    /// A file saved with a UTF-8 byte order mark (Windows PowerShell's <c>Set-Content -Encoding UTF8</c>) holds the tokens
    /// it shows: the mark is not taken for part of line 1, which was refused as "not a token" and the relay not started.
    /// </summary>
    [Fact]
    public void A_byte_order_mark_at_the_start_is_not_part_of_the_first_token()
    {
        File.WriteAllBytes(_fixture.Path, [0xEF, 0xBB, 0xBF, .. "alpha\r\nbeta\r\n"u8]);
        using TokenFile file = _fixture.Open();

        Assert.Equal(2, file.Count);
        Assert.True(file.IsValid("alpha"));
        Assert.True(file.IsValid("beta"));

        // Only at the start: elsewhere it is a character no token has.
        File.WriteAllBytes(_fixture.Path, [.. "alpha\n"u8, 0xEF, 0xBB, 0xBF, .. "beta\n"u8]);
        Assert.False(TokenFile.TryOpen(_fixture.Path, out _, out string? error));
        Assert.Contains("line 2 is not a token", error, StringComparison.Ordinal);
    }

    /// <summary>
    /// A file edited in place is read while its writer is half-way: here the writer has put "new-t" of "new-token" in the
    /// file between the relay's look at it and its read. That read is not used, so "new-t", a token no one was given, is
    /// never valid, and the old set stays in force, unreported, until the next check finds the write done.
    /// </summary>
    [Fact]
    public void A_file_written_to_while_it_is_read_is_not_used_until_it_is_read_whole()
    {
        using TokenFile file = OpenThenEdit();

        Assert.False(CheckWhileWritten("new-t", () => file.IsValid("new-t")));
        Assert.True(file.IsValid("old-token"));
        Assert.Empty(_fixture.Changes);
        Assert.Null(file.LastError);

        File.WriteAllText(_fixture.Path, "new-token\n");
        _fixture.Tick();
        Assert.True(file.IsValid("new-token"));
        Assert.False(file.IsValid("new-t"));
        Assert.False(file.IsValid("old-token"));
        Assert.Equal(1, Assert.Single(_fixture.Changes).TokenCount);
    }

    /// <summary>One that changed during the read and then stayed so is read again at the next check, not left unread.</summary>
    [Fact]
    public void A_file_that_changed_during_its_read_is_read_again_at_the_next_check()
    {
        using TokenFile file = OpenThenEdit();

        Assert.True(CheckWhileWritten("new-token\n", () => file.IsValid("old-token")));

        _fixture.Tick();
        Assert.True(file.IsValid("new-token"));
        Assert.False(file.IsValid("old-token"));
    }

    /// <summary>
    /// A file of "old-token", opened without a watcher, then edited so that the next check reads it (a new length tells
    /// it, whatever the grain of the file system's clock).
    /// </summary>
    private TokenFile OpenThenEdit()
    {
        _fixture.Write("old-token\n");
        TokenFile file = _fixture.Open(watch: false);
        _fixture.Write("old-token\n\n");
        return file;
    }

    /// <summary>
    /// Lets the check interval pass and runs <paramref name="check"/>, during whose re-read <paramref name="midway"/> is
    /// written to the file between the look at it and its read, as a writer still at work would.
    /// </summary>
    private bool CheckWhileWritten(string midway, Func<bool> check)
    {
        InputFile.t_beforeOpen = path =>
        {
            InputFile.t_beforeOpen = null;
            File.WriteAllText(path, midway);
        };
        try
        {
            _fixture.Tick();
            return check();
        }
        finally
        {
            InputFile.t_beforeOpen = null;
        }
    }

    [Fact]
    public void Missing_file_at_start_is_an_error()
    {
        Assert.False(TokenFile.TryOpen(_fixture.Path, out TokenFile? file, out string? error));
        Assert.Null(file);
        Assert.Contains(_fixture.Path, error, StringComparison.Ordinal);
    }

    [Fact]
    public void Bad_line_at_start_is_an_error_naming_the_line_not_the_content()
    {
        _fixture.Write("good\n# fine\nsecret with spaces\n");
        Assert.False(TokenFile.TryOpen(_fixture.Path, out _, out string? error));
        Assert.Contains("line 3 is not a token", error, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Empty_file_is_valid_and_lets_no_one_in()
    {
        _fixture.Write("# nobody yet\n");
        using TokenFile file = _fixture.Open();
        Assert.Equal(0, file.Count);
        Assert.False(file.IsValid("anything"));
    }

    [Fact]
    public void Rereads_after_an_edit_in_place_once_the_interval_has_passed()
    {
        _fixture.Write("old-token\n");
        using TokenFile file = _fixture.Open();
        Assert.True(file.IsValid("old-token"));

        _fixture.Write("new-token\n");
        Assert.True(file.IsValid("old-token"));
        Assert.False(file.IsValid("new-token"));

        _fixture.Tick();
        Assert.True(file.IsValid("new-token"));
        Assert.False(file.IsValid("old-token"));
        TokenFileChangedEventArgs change = Assert.Single(_fixture.Changes);
        Assert.True(change.Succeeded);
        Assert.Equal(1, change.TokenCount);
    }

    [Fact]
    public void Rereads_after_an_edit_that_keeps_the_length()
    {
        _fixture.Write("token-aaaa\n");
        using TokenFile file = _fixture.Open();

        _fixture.Write("token-bbbb\n");
        File.SetLastWriteTimeUtc(_fixture.Path, File.GetLastWriteTimeUtc(_fixture.Path).AddSeconds(1));
        _fixture.Tick();
        Assert.True(file.IsValid("token-bbbb"));
        Assert.False(file.IsValid("token-aaaa"));
    }

    [Fact]
    public void Rereads_after_replacement_by_rename()
    {
        _fixture.Write("first\n");
        using TokenFile file = _fixture.Open();

        _fixture.ReplaceByRename("second\nthird\n");
        _fixture.Tick();
        Assert.True(file.IsValid("second"));
        Assert.True(file.IsValid("third"));
        Assert.False(file.IsValid("first"));
        Assert.Equal(2, file.Count);

        _fixture.ReplaceByRename("fourth\n");
        _fixture.Tick();
        Assert.True(file.IsValid("fourth"));
        Assert.False(file.IsValid("second"));
        Assert.Equal(2, _fixture.Changes.Count);
    }

    [Fact]
    public void Rereads_after_replacement_by_rename_that_keeps_length_and_time()
    {
        // As "cp -p" or "rsync -t" into place would: only the file itself is new.
        _fixture.Write("token-aaaa\n");
        DateTime written = File.GetLastWriteTimeUtc(_fixture.Path);
        using TokenFile file = _fixture.Open();

        _fixture.ReplaceByRename("token-bbbb\n");
        File.SetLastWriteTimeUtc(_fixture.Path, written);

        // The file system watcher reports the rename asynchronously.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        bool reloaded = false;
        while (!reloaded && DateTime.UtcNow < deadline)
        {
            _fixture.Tick();
            reloaded = file.IsValid("token-bbbb");
            if (!reloaded)
            {
                Thread.Sleep(20);
            }
        }

        Assert.True(reloaded);
        Assert.False(file.IsValid("token-aaaa"));
    }

    [Fact]
    public void Rereads_a_mounted_secret_when_its_link_is_swapped_to_new_content()
    {
        // The link itself never changes: only what it leads to does.
        _fixture.PublishAsMountedSecret("revoked-token\n");
        using TokenFile file = _fixture.Open();
        Assert.True(file.IsValid("revoked-token"));
        _fixture.Tick();
        Assert.True(file.IsValid("revoked-token"));

        _fixture.PublishAsMountedSecret("new-token\n");
        _fixture.Tick();
        Assert.True(file.IsValid("new-token"));
        Assert.False(file.IsValid("revoked-token"));
        Assert.Single(_fixture.Changes);
    }

    [Fact]
    public void Without_a_watcher_length_and_time_still_catch_edits_and_renames()
    {
        _fixture.Write("first\n");
        using TokenFile file = _fixture.Open(watch: false);

        _fixture.Write("second\n");
        _fixture.Tick();
        Assert.True(file.IsValid("second"));

        _fixture.ReplaceByRename("third-token\n");
        Assert.False(file.IsValid("third-token"));
        _fixture.Tick();
        Assert.True(file.IsValid("third-token"));
        Assert.False(file.IsValid("second"));

        File.Delete(_fixture.Path);
        _fixture.Tick();
        Assert.True(file.IsValid("third-token"));
        Assert.NotNull(file.LastError);
    }

    [Fact]
    public async Task A_token_file_that_is_a_fifo_is_an_error_at_once()
    {
        string fifo = InputFileTests.MakeFifo(Path.GetDirectoryName(_fixture.Path)!, "fifo");

        var (opened, error) = await Task.Run(() => (TokenFile.TryOpen(fifo, out TokenFile? file, out string? error), error)).WaitAsync(Timeouts.Default);

        Assert.False(opened);
        Assert.Equal($"'{fifo}' is a FIFO (named pipe), not a regular file", error);
    }

    [Fact]
    public void A_token_file_renamed_over_with_the_same_length_and_time_is_read_again_without_a_watcher()
    {
        // As "cp -p new tokens.tmp; mv tokens.tmp tokens" would: only the inode tells the new file from the old.
        _fixture.Write("token-aaaa\n");
        DateTime written = File.GetLastWriteTimeUtc(_fixture.Path);
        using TokenFile file = _fixture.Open(watch: false);

        string aside = _fixture.Path + ".new";
        File.WriteAllText(aside, "token-bbbb\n");
        File.SetLastWriteTimeUtc(aside, written);
        File.Move(aside, _fixture.Path, overwrite: true);
        _fixture.Tick();

        Assert.True(file.IsValid("token-bbbb"));
        Assert.False(file.IsValid("token-aaaa"));
    }

    [Fact]
    public void Checks_at_most_once_per_interval()
    {
        _fixture.Write("first\n");
        using TokenFile file = _fixture.Open(watch: false);

        _fixture.Write("second-token\n");
        _fixture.Time.Advance(TokenFile.DefaultCheckInterval - TimeSpan.FromTicks(1));
        Assert.False(file.IsValid("second-token"));
        _fixture.Time.Advance(TimeSpan.FromTicks(1));
        Assert.True(file.IsValid("second-token"));
    }

    [Fact]
    public void Unchanged_file_is_not_reported()
    {
        _fixture.Write("token\n");
        using TokenFile file = _fixture.Open();
        for (int i = 0; i < 5; i++)
        {
            _fixture.Tick();
            Assert.True(file.IsValid("token"));
        }

        Assert.Empty(_fixture.Changes);
    }

    [Fact]
    public void Missing_file_keeps_the_last_set_and_reports_once()
    {
        _fixture.Write("kept\n");
        using TokenFile file = _fixture.Open();

        File.Delete(_fixture.Path);
        for (int i = 0; i < 3; i++)
        {
            _fixture.Tick();
            Assert.True(file.IsValid("kept"));
        }

        TokenFileChangedEventArgs change = Assert.Single(_fixture.Changes);
        Assert.False(change.Succeeded);
        Assert.Equal(1, change.TokenCount);
        Assert.Contains(_fixture.Path, change.Error, StringComparison.Ordinal);
        Assert.Equal(change.Error, file.LastError);

        _fixture.Write("back\n");
        _fixture.Tick();
        Assert.True(file.IsValid("back"));
        Assert.False(file.IsValid("kept"));
        Assert.Null(file.LastError);
        Assert.True(_fixture.Changes[^1].Succeeded);
    }

    [Fact]
    public void Unreadable_file_keeps_the_last_set()
    {
        _fixture.Write("kept\n");
        using TokenFile file = _fixture.Open();

        // A directory where the file was cannot be read, even by root.
        File.Delete(_fixture.Path);
        Directory.CreateDirectory(_fixture.Path);
        _fixture.Tick();
        Assert.True(file.IsValid("kept"));
        Assert.NotNull(file.LastError);
        Assert.False(Assert.Single(_fixture.Changes).Succeeded);

        Directory.Delete(_fixture.Path);
        _fixture.Write("next\n");
        _fixture.Tick();
        Assert.True(file.IsValid("next"));
        Assert.Null(file.LastError);
    }

    [Fact]
    public void Bad_content_on_reread_keeps_the_last_set()
    {
        _fixture.Write("kept\n");
        using TokenFile file = _fixture.Open();

        _fixture.ReplaceByRename("kept\nnot a token\n");
        _fixture.Tick();
        Assert.True(file.IsValid("kept"));
        Assert.Contains("line 2 is not a token", file.LastError, StringComparison.Ordinal);

        _fixture.ReplaceByRename("fixed\n");
        _fixture.Tick();
        Assert.True(file.IsValid("fixed"));
        Assert.Null(file.LastError);
    }

    [Fact]
    public void Disposed_file_refuses_use()
    {
        _fixture.Write("token\n");
        TokenFile file = _fixture.Open();
        file.Dispose();
        file.Dispose();
        Assert.Throws<ObjectDisposedException>(() => file.IsValid("token"));
    }
}
