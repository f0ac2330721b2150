// Doorstep's iOS glue, called from src/platform/ios.rs through the Objective-C runtime (objc2). The Rust
// side type-checks; this file has NEVER been compiled or run (written without a Mac), see docs/mobile.md.
//
// The class and every method carry an explicit @objc name: Rust looks the class up as "DoorstepPlatform"
// (without @objc(...) Swift would register a mangled, module-prefixed name) and sends exactly the selectors
// written here. Swift Int is NSInteger (Rust isize), Bool is BOOL (Rust bool), String is NSString.
//
// As on Android, every user-visible string comes from Rust (src/platform/notice.rs), where the wording is
// fixed and names nobody; this file never builds notification text of its own. Rust may call from any
// thread, so everything that touches UIKit hops to the main queue.
import AudioToolbox
import UIKit
import UserNotifications

@objc(DoorstepPlatform) public final class DoorstepPlatform: NSObject {
    private static var backgroundTask: UIBackgroundTaskIdentifier = .invalid

    /// Ask once, at start, not on a doorstep.
    @objc(askForNotifications) public static func askForNotifications() {
        UNUserNotificationCenter.current().requestAuthorization(options: [.alert, .sound]) { _, _ in }
    }

    /// Shows a notice now, or at `after` seconds from now if positive (reminders scheduled ahead, because
    /// iOS may not let the app run at the moment a check-in is due). Same id replaces the earlier one.
    /// Always an ordinary reminder: it may be seen in a family's living room.
    @objc(notify:title:body:after:)
    public static func notify(id: Int, title: String, body: String, after: Double) {
        let content = UNMutableNotificationContent()
        content.title = title
        content.body = body
        // The ordinary sound, which follows the phone's silent switch.
        content.sound = .default
        content.categoryIdentifier = "doorstep-reminder"
        // The text is fixed and discreet, so it may show on the lock screen in full.
        let trigger = after > 0 ? UNTimeIntervalNotificationTrigger(timeInterval: after, repeats: false) : nil
        let request = UNNotificationRequest(identifier: "doorstep-\(id)", content: content, trigger: trigger)
        UNUserNotificationCenter.current().add(request)
    }

    /// Withdraws a notice scheduled ahead that has not been shown yet.
    @objc(cancel:) public static func cancel(id: Int) {
        UNUserNotificationCenter.current().removePendingNotificationRequests(withIdentifiers: ["doorstep-\(id)"])
    }

    /// One tap per pulse; iPhones have no waveform API for third-party apps without Core Haptics files.
    @objc(vibrate:strong:) public static func vibrate(pulses: Int, strong: Bool) {
        DispatchQueue.main.async {
            let generator = UIImpactFeedbackGenerator(style: strong ? .heavy : .light)
            generator.prepare()
            for pulse in 0..<max(pulses, 1) {
                DispatchQueue.main.asyncAfter(deadline: .now() + Double(pulse) * 0.35) {
                    generator.impactOccurred()
                }
            }
        }
    }

    /// A system sound: 1005 is the alarm tone, 1007 the ordinary "new message" tone. These ids are
    /// undocumented but long stable; check them on a device. Rust asks for the alarm tone only for a late
    /// check-in the staff member chose to hear (the phone's settings; off unless turned on).
    @objc(playAlertSound:) public static func playAlertSound(urgent: Bool) {
        AudioServicesPlayAlertSound(SystemSoundID(urgent ? 1005 : 1007))
    }

    /// tel: and sms: links built and percent-encoded in Rust (src/platform/phone.rs). Opens the Phone or
    /// Messages app; nothing is called or sent without the user pressing the button there.
    @objc(open:) public static func open(uri: String) {
        guard let url = URL(string: uri) else { return }
        DispatchQueue.main.async { UIApplication.shared.open(url) }
    }

    /// A little time to finish syncing after the app leaves the screen; the reminders themselves are
    /// scheduled with notify(after:), which does not need the app to run.
    @objc(beginVisitTimer) public static func beginVisitTimer() {
        DispatchQueue.main.async {
            guard backgroundTask == .invalid else { return }
            backgroundTask = UIApplication.shared.beginBackgroundTask(withName: "Doorstep visit") {
                endBackgroundTask()
            }
        }
    }

    @objc(endVisitTimer) public static func endVisitTimer() {
        DispatchQueue.main.async { endBackgroundTask() }
    }

    /// Main queue only.
    private static func endBackgroundTask() {
        guard backgroundTask != .invalid else { return }
        UIApplication.shared.endBackgroundTask(backgroundTask)
        backgroundTask = .invalid
    }
}
