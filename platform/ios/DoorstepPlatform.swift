// Doorstep's iOS glue: what src/platform/ios.rs should call. NOT WIRED YET and never compiled: written
// without a Mac, kept small, and described as such in docs/mobile.md.
//
// As on Android, every user-visible string comes from Rust (src/platform/notice.rs), where the wording is
// fixed and names nobody; this file never builds notification text of its own.
import UIKit
import UserNotifications

@objc public final class DoorstepPlatform: NSObject {
    private static var backgroundTask: UIBackgroundTaskIdentifier = .invalid

    /// Ask once, at start, not on a doorstep.
    @objc public static func askForNotifications() {
        UNUserNotificationCenter.current().requestAuthorization(options: [.alert, .sound]) { _, _ in }
    }

    /// Shows a notice now, or at `after` seconds from now if positive (reminders scheduled ahead, because
    /// iOS may not let the app run at the moment a check-in is due). Same id replaces the earlier one.
    @objc public static func notify(id: Int, title: String, body: String, urgent: Bool, after: Double) {
        let content = UNMutableNotificationContent()
        content.title = title
        content.body = body
        // Same sound either way: louder (critical or time-sensitive) alerts need an Apple entitlement that
        // Doorstep has not asked for, so `urgent` only marks the category for now.
        content.sound = .default
        content.categoryIdentifier = urgent ? "doorstep-urgent" : "doorstep-reminder"
        // The text is fixed and discreet, so it may show on the lock screen in full.
        let trigger = after > 0 ? UNTimeIntervalNotificationTrigger(timeInterval: after, repeats: false) : nil
        let request = UNNotificationRequest(identifier: "doorstep-\(id)", content: content, trigger: trigger)
        UNUserNotificationCenter.current().add(request)
    }

    @objc public static func cancel(id: Int) {
        UNUserNotificationCenter.current().removePendingNotificationRequests(withIdentifiers: ["doorstep-\(id)"])
    }

    /// One light tap per pulse; iPhones have no waveform API for third-party apps without Core Haptics files.
    @objc public static func vibrate(pulses: Int, strong: Bool) {
        let generator = UIImpactFeedbackGenerator(style: strong ? .heavy : .light)
        generator.prepare()
        for pulse in 0..<max(pulses, 1) {
            DispatchQueue.main.asyncAfter(deadline: .now() + Double(pulse) * 0.35) {
                generator.impactOccurred()
            }
        }
    }

    /// tel: and sms: links built and percent-encoded in Rust (src/platform/phone.rs).
    @objc public static func open(uri: String) {
        guard let url = URL(string: uri) else { return }
        UIApplication.shared.open(url)
    }

    /// A little time to finish syncing after the app leaves the screen; the reminders themselves are
    /// scheduled with notify(after:), which does not need the app to run.
    @objc public static func beginVisitTimer() {
        guard backgroundTask == .invalid else { return }
        backgroundTask = UIApplication.shared.beginBackgroundTask(withName: "Doorstep visit") {
            endVisitTimer()
        }
    }

    @objc public static func endVisitTimer() {
        guard backgroundTask != .invalid else { return }
        UIApplication.shared.endBackgroundTask(backgroundTask)
        backgroundTask = .invalid
    }
}
