/* The cold-start benchmark's floor (scripts/bench-cold-start): a bare WebKitGTK window, native like the
 * app, sized like the app's window, showing the static page named as its one argument
 * (tests/desktop/bare_today.html). It does nothing else: the time from spawning it until that page's
 * text is in the accessibility tree is the least any WebKitGTK app could take on this machine.
 * Built by the benchmark: cc bare_webkit.c $(pkg-config --cflags --libs webkit2gtk-4.1) */
#include <gtk/gtk.h>
#include <webkit2/webkit2.h>

int main(int argc, char **argv) {
    gchar *html = NULL;
    if (argc != 2 || !g_file_get_contents(argv[1], &html, NULL, NULL)) {
        g_printerr("usage: bare-webkit PAGE.html\n");
        return 2;
    }
    g_set_prgname("bare-webkit");
    gtk_init(&argc, &argv);
    GtkWidget *window = gtk_window_new(GTK_WINDOW_TOPLEVEL);
    gtk_window_set_title(GTK_WINDOW(window), "Doorstep floor");
    gtk_window_set_default_size(GTK_WINDOW(window), 390, 844);
    g_signal_connect(window, "destroy", G_CALLBACK(gtk_main_quit), NULL);
    GtkWidget *view = webkit_web_view_new();
    gtk_container_add(GTK_CONTAINER(window), view);
    webkit_web_view_load_html(WEBKIT_WEB_VIEW(view), html, NULL);
    gtk_widget_show_all(window);
    gtk_main();
    g_free(html);
    return 0;
}
